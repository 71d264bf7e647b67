"""One line for each way an override can be wrong before or while Hydra composes it: a parse error (with
how to quote the value), a sweep without -m, a deleted group or key (`~dataset`), an append to a key that
exists (`+distill.steps=3`), an unknown group option or key (with the valid ones and a "did you mean")."""

from __future__ import annotations

import re
from typing import List

from omegaconf import OmegaConf

from dd_runner.config.keys import unknown_key_message
from dd_runner.core.errors import ConfigError, did_you_mean

# Characters Hydra's grammar reads as syntax in an unquoted value: such a value has to be quoted.
SYNTAX = set("=,[]{}()'\"\\ ")
SHELL = "(the shell removes the outer quotes)"


def quoted(key: str, value: str) -> str:
    """The override with its value quoted for Hydra, as typed in a shell."""
    return f"'{key}=\"{value}\"'" if '"' not in value else f"\"{key}='{value}'\""


def parse_error(overrides: List[str], error: Exception) -> ConfigError:
    """The override Hydra cannot parse, and how to quote it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except Exception as e:
            key, _, value = override.partition("=")
            if key.endswith("_split") and "[" in value:  # Hydra reads [...] as a list: quote the slice
                return ConfigError(f"quote split slices for Hydra: {quoted(key, value)} {SHELL}")
            if SYNTAX & set(value) and not ('"' in value and "'" in value):
                return ConfigError(f"cannot parse '{override}': quote a value holding '=', commas, spaces or "
                                   f"brackets for Hydra: {quoted(key, value)} {SHELL}")
            return ConfigError(f"cannot parse '{override}': {str(e).strip().splitlines()[0]}")
    return ConfigError(f"cannot parse the overrides: {str(error).strip().splitlines()[0]}")


def sweep_error(override: str, argv: List[str]) -> ConfigError:
    key, _, value = override.partition("=")
    hint = f", or quote a value holding a comma: {quoted(key.lstrip('+'), value)}" if "," in value else ""
    return ConfigError(f"{override} is a sweep: add -m (dd-run -m {' '.join(argv)}){hint}")


def check_deletions(parsed, base) -> None:
    """`~group` / `~key` on what every run needs: a required group, a section or a schema key (Hydra would
    leave it missing, or refuse with a raw error). Optional groups (experiment, search) and entries of
    free-form maps may be deleted."""
    from dd_runner.config.schema import GROUP_SCHEMAS, SECTION_SCHEMAS

    for override in parsed:
        if not override.is_delete():
            continue
        key = override.key_or_group
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        if key in GROUP_SCHEMAS:
            raise ConfigError(f"'{override.input_line}' removes the {key} group, which every run needs: choose "
                              f"another option with {key}=OPTION (dd-run --help {key} lists them)")
        if key in SECTION_SCHEMAS:
            raise ConfigError(f"'{override.input_line}' removes the {key} section, which every run needs: set "
                              f"its keys instead ({key}.KEY=VALUE; dd-run --help {key} lists them)")
        if node is not None and OmegaConf.is_dict(node) and leaf in node and _typed(node):
            section = parent.split(".")[0] if parent else "top"
            raise ConfigError(f"'{override.input_line}' deletes {key}, which the schema requires: set it instead "
                              f"({key}=VALUE; dd-run --help {section} lists the values)")


def _typed(node) -> bool:
    import dataclasses

    return dataclasses.is_dataclass(OmegaConf.get_type(node))


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain(exc: BaseException, base) -> str:
    """One line for a composition error, naming the valid keys or options."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    for e in _chain(exc):
        if isinstance(e, MissingConfigException) and e.missing_cfg_file and "/" in e.missing_cfg_file:
            group, _, option = e.missing_cfg_file.rpartition("/")
            options = list(e.options or [])
            return (f"unknown {group} option '{option}'{did_you_mean(option, options)}; "
                    f"valid: {', '.join(o for o in options if not o.startswith('base_'))}")
        if isinstance(e, (ConfigKeyError, ConfigAttributeError)) and getattr(e, "full_key", None):
            parent, _, leaf = e.full_key.rpartition(".")
            node = None if base is None else OmegaConf.select(base, parent) if parent else base
            keys = sorted(node.keys()) if node is not None and OmegaConf.is_dict(node) else []
            if parent and not keys and OmegaConf.is_dict(node):  # a free-form map such as model.config_overrides
                return f"{parent} is a free-form map: add entries with a leading '+', e.g. '+{parent}={{{leaf}: ...}}'"
            return unknown_key_message(parent, leaf, keys)
        if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None):
            reason = str(getattr(e, "msg", e)).splitlines()[0]
            return f"invalid value for {e.full_key}: {reason}"
    message = str(exc).strip().splitlines()[0]
    added = re.search(r"An item is already at '([^']+)'|Multiple values for ([\w/]+)", message)
    if added:  # '+key=' on a key (or '+group=' on a group) the config already has
        key = added.group(1) or added.group(2)
        return f"'+{key}=...' adds {key}, which the config already has: drop the '+' ({key}=...)"
    return message

"""Keys the schema does not have.

A misspelt `key=value` fails when Hydra composes the config, but an append (`+distill.stepz=3`,
`++distill.stepz=3`) is force-added to the structured config without complaint and nothing reads it: the
run would record `stepz: 3` and go on with the default. `check_schema_keys` walks the composed (or
resumed) config and refuses every key a schema section lacks, with the same message as a typo. Free-form
maps (model.config_overrides, model.architecture, dataset.data_files) are not schema sections: entries are
added to them with '+'.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from dd_runner.core.errors import ConfigError, did_you_mean


def unknown_key_message(parent: str, leaf: str, keys: Iterable[str]) -> str:
    """"unknown key 'distill.stepz' (did you mean 'distill.steps'?); valid keys of distill: ..."."""
    keys = sorted(keys)
    hint = did_you_mean(leaf, keys)
    if parent:
        hint = hint.replace("'", f"'{parent}.", 1)
    where = f"of {parent}" if parent else "(top level)"
    return f"unknown key '{parent + '.' if parent else ''}{leaf}'{hint}; valid keys {where}: {', '.join(keys)}"


def check_schema_keys(cfg, path: str = "") -> None:
    """Raise ConfigError for the first key of a schema-typed node that its schema does not declare."""
    from omegaconf import DictConfig, OmegaConf

    kind = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(kind):  # a free-form map: any key goes
        return
    fields = [f.name for f in dataclasses.fields(kind)]
    for key in cfg.keys():
        if key not in fields:
            raise ConfigError(unknown_key_message(path, str(key), fields))
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            check_schema_keys(child, f"{path}.{key}" if path else str(key))

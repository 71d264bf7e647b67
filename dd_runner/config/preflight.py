"""Pre-flight check of `dd-run`'s command line: compose every job's config with Hydra's compose API and
validate it before Hydra starts, so a typo costs one line and exit code 2 instead of a stack trace (or a
sweep that fails in job 37). Hydra's own flags (--help, --cfg, -cn, ...) are left to Hydra.
"""

from __future__ import annotations

from typing import List, Optional

from omegaconf import OmegaConf

from dd_runner.core.errors import ConfigError, did_you_mean

CONFIG_MODULE = "dd_runner.conf"


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
            node = OmegaConf.select(base, parent) if parent else base
            keys = sorted(node.keys()) if node is not None and OmegaConf.is_dict(node) else []
            if parent and not keys and OmegaConf.is_dict(node):  # a free-form map such as model.config_overrides
                return f"{parent} is a free-form map: add entries with a leading '+', e.g. '+{parent}={{{leaf}: ...}}'"
            where = f"of {parent}" if parent else "(top level)"
            hint = did_you_mean(leaf, keys).replace("'", f"'{parent}.", 1) if parent else did_you_mean(leaf, keys)
            return f"unknown key '{e.full_key}'{hint}; valid keys {where}: {', '.join(keys)}"
        if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None):
            reason = str(getattr(e, "msg", e)).splitlines()[0]
            return f"invalid value for {e.full_key}: {reason}"
    return str(exc).strip().splitlines()[0]


def job_overrides(argv: List[str]) -> Optional[List[List[str]]]:
    """The override lists of the jobs `argv` would start, or None when Hydra should decide alone."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = any(a in ("-m", "--multirun") for a in argv)
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return None
    overrides = [a for a in argv if not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as e:  # hydra's OverrideParseException
        sliced = next((o for o in overrides if "[" in o and "_split=" in o), None)
        if sliced:  # Hydra reads [...] as a list: a split slice has to be quoted inside the override
            key, _, value = sliced.partition("=")
            raise ConfigError(f"quote split slices for Hydra: '{key}=\"{value}\"' (the shell removes outer quotes)") from None
        raise ConfigError(f"cannot parse the overrides: {str(e).splitlines()[0]}") from None
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise ConfigError(f"{sweeps[0]} is a sweep: add -m (dd-run -m {' '.join(argv)})")
        return [overrides]
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # sweeps only another sweeper understands (optuna ranges): let it check them
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    unique = {tuple(job): None for batch in batches for job in batch}
    return [list(job) for job in unique]


def preflight(argv: List[str]) -> None:
    """Raise ConfigError (one line) if any job of this command line has an invalid config."""
    from hydra import compose, initialize_config_module

    from dd_runner.config.plugins import check_plugins
    from dd_runner.config.validate import validate

    check_plugins(argv)
    jobs = job_overrides(argv)
    if jobs is None:
        return
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        base = compose("config")
        for overrides in jobs:
            try:
                cfg = compose("config", overrides=overrides)
            except Exception as e:
                raise ConfigError(explain(e, base)) from None
            validate(cfg)


def hydra_dir(argv: List[str], multirun: bool) -> str:
    """The run (or sweep) directory Hydra would create for this command line, `${now:...}` resolved."""
    from hydra import compose, initialize_config_module

    jobs = job_overrides(argv) or [[]]
    own = [a for a in argv if a.startswith("hydra.")]  # e.g. hydra.run.dir=out/${seed}
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose("config", overrides=[*jobs[0], *own], return_hydra_config=True)
    return str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)


def shared_hydra_dirs(argv: List[str]) -> List[str]:
    """Overrides that give every rank the same Hydra run (or sweep) directory: rank 0 resolves its own
    (`${now:...}` included) and broadcasts it. Ranks other than 0 leave the Hydra record (.hydra/) and
    the log file to rank 0 and log warnings to stderr only."""
    import torch.distributed as dist

    from dd_runner.core import distributed

    multirun = any(a in ("-m", "--multirun") for a in argv)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    extra = []
    if not any(a.startswith(f"{key}=") for a in argv):
        box = [hydra_dir(argv, multirun) if distributed.is_main() else None]
        dist.broadcast_object_list(box, src=0)
        extra.append(f"{key}={quote(box[0])}")
    if not distributed.is_main():
        extra += [o for o in ("hydra.output_subdir=null", "hydra/job_logging=dd_runner_worker") if o not in argv]
    return [*argv, *extra]


def quote(value: str) -> str:
    """A Hydra override value holding any path (quoted: paths may contain '=' or ',')."""
    return "'" + value.replace("'", "\\'") + "'"

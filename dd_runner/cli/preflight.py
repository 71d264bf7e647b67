"""Pre-flight check of `dd-run`'s command line: compose every job's config with Hydra's compose API and
validate it before Hydra starts, so a typo costs one line and exit code 2 instead of a stack trace (or a
sweep that fails in job 37).

It composes from the search path Hydra will use (the package's conf/, `--config-dir DIR`,
`hydra.searchpath=[...]`; see dd_runner.cli.command_line), with the config name of `-cn`, so options
kept outside the package are checked like the shipped ones. It applies wherever Hydra composes the job's
config: a run, a multirun (job by job), `--cfg job|hydra|all`, `--resolve`, `--info`, and `dd-run --help`
given overrides. Hydra alone handles `--hydra-help`, `--version`, `--shell-completion`,
`--experimental-rerun` and `--config-path` (which replaces the package's conf/).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import List, Optional

from dd_runner.cli.command_line import SEARCHPATH, CommandLine, parse, with_overrides
from dd_runner.cli.override_errors import check_deletions, explain, parse_error, sweep_error
from dd_runner.core.errors import ConfigError

CONFIG_MODULE = "dd_runner.conf"


@contextmanager
def composer(cmd: Optional[CommandLine] = None):
    """A function composing a job config (overrides -> config) on the search path Hydra builds for this
    command line: hydra.main's own steps (hydra._internal.utils.run_hydra, hydra-core 1.3) for the package's
    conf/ and --config-dir, the user's hydra.searchpath override as given (compose applies it as a run does),
    and the primary config of -cn."""
    from hydra import compose, version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    search_path = create_config_search_path(f"pkg://{CONFIG_MODULE}")
    config_dir = cmd.config_dir() if cmd is not None else None
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=config_dir, anchor=SearchPathQuery(provider="schema"))
    searchpath = cmd.searchpath_override() if cmd is not None else None
    extra = [searchpath] if searchpath else []
    name = cmd.config_name if cmd is not None else "config"
    backup = get_gh_backup()
    version.setbase("1.3")
    try:
        Hydra.create_main_hydra2(task_name="dd-run", config_search_path=search_path)
        yield lambda overrides=(), **kw: compose(name, overrides=[*extra, *overrides], **kw)
    finally:
        restore_gh_from_backup(backup)


def _jobs(cmd: CommandLine, argv: List[str]) -> List[List[str]]:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = cmd.job_overrides()
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as e:  # hydra's OverrideParseException
        raise parse_error(overrides, e) from None
    if not cmd.multirun:
        sweep = next((o.input_line for o in parsed if o.is_sweep_override()), None)
        if sweep:
            raise sweep_error(sweep, argv)
        return [overrides]
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # sweeps only another sweeper understands (optuna ranges): let it check them
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    unique = {tuple(job): None for batch in batches for job in batch}
    return [list(job) for job in unique]


def job_overrides(argv: List[str]) -> Optional[List[List[str]]]:
    """The override lists of the jobs `argv` would start, or None when Hydra should decide alone."""
    cmd = parse(argv)
    return None if cmd is None or not cmd.composes else _jobs(cmd, argv)


def preflight(argv: List[str]) -> List:
    """Raise ConfigError (one line) if any job of this command line has an invalid config; return the
    composed configs of its jobs (none where the line is left to Hydra)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from dd_runner.config.plugins import check_plugins
    from dd_runner.config.validate import validate

    check_plugins(argv)
    cmd = parse(argv)
    if cmd is None or not cmd.composes:
        return []
    jobs = _jobs(cmd, argv)
    configs = []
    with composer(cmd) as compose:
        try:
            base = compose()
        except Exception as e:  # e.g. a user's config dir that breaks the defaults list
            raise ConfigError(explain(e, None)) from None
        for overrides in jobs:
            check_deletions(OverridesParser.create().parse_overrides(overrides), base)
            try:
                cfg = compose(overrides)
            except Exception as e:
                raise ConfigError(explain(e, base)) from None
            validate(cfg)
            configs.append(cfg)
    return configs


def hydra_dir(argv: List[str], multirun: bool) -> str:
    """The run (or sweep) directory Hydra would create for this command line, `${now:...}` resolved."""
    cmd = parse(argv)
    jobs = (job_overrides(argv) or [[]]) if cmd is not None else [[]]
    own = [o for o in (cmd.overrides if cmd else argv)  # e.g. hydra.run.dir=out/${seed}
           if o.startswith("hydra.") and not o.startswith(f"{SEARCHPATH}=")]
    with composer(cmd) as compose:
        cfg = compose([*jobs[0], *own], return_hydra_config=True)
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
    return with_overrides(argv, extra)


def quote(value: str) -> str:
    """A Hydra override value holding any path (quoted: paths may contain '=' or ',')."""
    return "'" + value.replace("'", "\\'") + "'"

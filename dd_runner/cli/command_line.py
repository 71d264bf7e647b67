"""`dd-run`'s command line as Hydra will read it: Hydra's own flags (read with Hydra's own argument parser,
so `-cd DIR`, `--config-dir=DIR`, `-c job` mean here what they mean there) and the overrides.

The search path of a run is the package's conf/ (pkg://dd_runner.conf), then `--config-dir DIR`, then
the entries of `hydra.searchpath=[...]`, in that order: the order Hydra builds (the config dir is added
before the schemas, hydra.searchpath entries after it); the pre-flight check (dd_runner.cli.preflight)
composes on the same path, and `--help` lists the options found there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from dd_runner.core.errors import ConfigError

SEARCHPATH = "hydra.searchpath"


def _parser() -> argparse.ArgumentParser:
    from hydra._internal.utils import get_args_parser  # the parser hydra.main uses (hydra-core 1.3)

    parser = get_args_parser()
    parser.exit_on_error = False  # an invalid line is left to Hydra, which prints its usage
    return parser


@dataclass(frozen=True)
class CommandLine:
    overrides: List[str]  # key=value, group=option, +key=..., ~group, in their order
    flags: List[str]  # every other token (Hydra's flags and their values), in their order
    args: argparse.Namespace

    @property
    def multirun(self) -> bool:
        return bool(self.args.multirun)

    @property
    def only_shows(self) -> bool:
        """Prints something (a config, Hydra's info or help) instead of running a job."""
        a = self.args
        return bool(a.help or a.hydra_help or a.cfg or a.info or a.shell_completion or "--version" in self.flags)

    @property
    def composes(self) -> bool:
        """Whether Hydra will compose the config from our search path (so the pre-flight check applies).
        Not for --hydra-help / --version / --shell-completion / --experimental-rerun (a pickled config),
        nor --config-path, which replaces the package's conf/ with a directory of the user's."""
        a = self.args
        return not (a.hydra_help or a.shell_completion or a.experimental_rerun or a.config_path
                    or "--version" in self.flags)

    @property
    def config_name(self) -> str:
        return self.args.config_name or "config"

    def config_dir(self) -> Optional[str]:
        """--config-dir DIR as a search path entry (checked: Hydra's own error is a traceback)."""
        if self.args.config_dir is None:
            return None
        folder = Path(self.args.config_dir).expanduser().absolute()
        if not folder.is_dir():
            raise ConfigError(f"--config-dir {self.args.config_dir}: no such directory (it holds your "
                              "<group>/<option>.yaml files)")
        return f"file://{folder}"

    def searchpath_override(self) -> Optional[str]:
        """The hydra.searchpath=[...] override, its entries checked."""
        override = next((o for o in self.overrides if o.split("=", 1)[0] == SEARCHPATH), None)
        if override is not None:
            _searchpath_entries(override)
        return override

    def search_path(self) -> List[str]:
        """The folders added to the package's conf/, in Hydra's order: --config-dir, then hydra.searchpath."""
        override = self.searchpath_override()
        return [*filter(None, [self.config_dir()]), *(_searchpath_entries(override) if override else [])]

    def job_overrides(self) -> List[str]:
        """The overrides of the job config: Hydra's own (hydra.*, hydra/launcher=...) set no job key."""
        return [o for o in self.overrides if not o.lstrip("+~").startswith("hydra")]


def _searchpath_entries(override: str) -> List[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_override(override).value()
    except Exception:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{SEARCHPATH} takes a list of config folders: '{SEARCHPATH}=[file://DIR]' "
                          "(DIR holds <group>/<option>.yaml files)")
    for entry in value:
        if entry.startswith("file://") and not Path(entry[len("file://"):]).expanduser().is_dir():
            raise ConfigError(f"{SEARCHPATH} entry {entry}: no such directory (an absolute path after "
                              "file://, or one relative to the working directory)")
    return value


def _value_flags(parser: argparse.ArgumentParser):
    """Option strings whose next token is their value: always (nargs None) or when it is one of the
    choices (nargs '?', e.g. --info)."""
    always, optional = set(), {}
    for action in parser._actions:
        if action.nargs is None and action.option_strings:
            always.update(action.option_strings)
        elif action.nargs == "?":
            optional.update({s: set(action.choices or ()) for s in action.option_strings})
    return always, optional


def parse(argv: List[str]) -> Optional[CommandLine]:
    """The command line, or None where Hydra's parser refuses it (Hydra then prints its own usage)."""
    parser = _parser()
    try:
        args, unknown = parser.parse_known_intermixed_args(list(argv))
    except (argparse.ArgumentError, TypeError, ValueError):
        return None
    if unknown:
        return None
    always, optional = _value_flags(parser)
    overrides, flags, i = [], [], 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("-") and len(token) > 1:
            flags.append(token)
            takes_next = token in always or (token in optional and i + 1 < len(argv) and argv[i + 1] in optional[token])
            if takes_next and i + 1 < len(argv):
                flags.append(argv[i + 1])
                i += 1
        else:
            overrides.append(token)
        i += 1
    if overrides != list(args.overrides or []):
        return None
    return CommandLine(overrides, flags, args)


def with_overrides(argv: List[str], extra: List[str]) -> List[str]:
    """`argv` with `extra` overrides added after its own and before the flags: Hydra's parser takes the
    overrides as one run of positional arguments, so one added after `--cfg job` would be 'unrecognized'
    (and `--info` would take it for its value)."""
    cmd = parse(argv)
    return [*argv, *extra] if cmd is None else [*cmd.overrides, *extra, *cmd.flags]

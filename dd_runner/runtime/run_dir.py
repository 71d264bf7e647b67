"""Which directories a run may write into: never a file, never a folder of someone else's files, never a
directory it cannot write.

`output_dir=DIR` (and `hydra.run.dir=DIR`) must be new, empty, or a run directory dd-run wrote. A
folder that holds other files is refused (one line, exit 2) rather than written into or beside:

- dd-run writes fixed names into its run directory (config.yaml, metrics.json, checkpoint.safetensors,
  images.png, ...), so running into a user's folder would overwrite their own config.yaml or
  images.png without a word;
- writing into a fresh sub-directory instead was considered and rejected: the user named DIR, and
  scripts, sweeps and `dd-report` look for DIR/metrics.json; a run that lands elsewhere would look
  like one that never finished. The refusal says which files are in the way and what to do.

A run directory is recognised by what only dd-run leaves there: Hydra's record (`.hydra/`), a
checkpoint, metrics.json, failure.json or the run's log (dd-run.log). Such a directory keeps its
behaviour (runtime/resume.py): the same config continues or returns the finished run, another config is
refused. `resume=DIR` must be an existing run directory.

Writability is tried (a temporary file created and removed), not guessed from permission bits: root
ignores them, and a read-only file system refuses everyone. An unwritable directory is a runtime failure
(exit 1, as a full disk), named with the setting to change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List

from dd_runner.core.errors import ConfigError, RunError
from dd_runner.core.files import write_failure

# What only dd-run leaves in a run directory (Hydra's record and log included: Hydra writes them first).
RUN_MARKERS = (".hydra", "checkpoint.safetensors", "metrics.json", "failure.json", "dd-run.log")


def is_run_dir(path: Path) -> bool:
    return any((Path(path) / name).exists() for name in RUN_MARKERS)


def foreign_files(path: Path) -> List[str]:
    """The names in an existing directory that show it is not a run directory ([] if it is one, or empty)."""
    path = Path(path)
    if is_run_dir(path):
        return []
    return sorted(p.name for p in path.iterdir())


def claim_output_dir(value, setting: str = "output_dir") -> Path:
    """The directory a run will write into, created if new. ConfigError (exit 2) if it is a file or a folder
    of other files; RunError (exit 1) if it cannot be created or written."""
    path = Path(str(value)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting}={value} is a file, not a directory: choose a new or empty directory")
    if path.is_dir():
        foreign = foreign_files(path)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ConfigError(f"{setting}={value} holds files dd-run did not write ({shown}): it would overwrite "
                              f"them; choose a new or empty directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create the output directory {value}: {e.strerror}; choose another {setting}") from None
    check_writable(path, setting)
    return path


def claim_resume_dir(value) -> Path:
    """The run directory `resume=` continues: it must exist, be a directory holding a run, and be writable
    (the continued run writes its checkpoint, log and results there). ConfigError (exit 2) for the first
    two, RunError (exit 1) for the last."""
    path = Path(str(value)).expanduser()
    where = "point resume at a run directory (outputs/runs/<date>/<time>)"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"resume={value} is a file, not a run directory: {where}")
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"resume={value}: no config.yaml there; {where}")
    check_writable(path, "resume", hint="copy the run directory somewhere writable and resume the copy")
    return path


def check_writable(path: Path, setting: str, hint: str = "") -> None:
    """RunError naming the directory unless a file can be created in it."""
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".dd-run-write-test."):
            pass
    except OSError as e:
        remedy = write_failure(e, setting) if not hint else f"{e.strerror or e}; {hint}"
        raise RunError(f"cannot write to {path}: {remedy}") from None

"""Errors a user can act on.

Every expected failure is a `DDError` whose message is one line saying what to change. `dd-run` prints
that line (the traceback goes to the run's log file) and exits with `exit_code`: 2 for configuration
errors, 1 for runtime failures.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class DDError(Exception):
    """Base class of the errors dd-run reports as one line."""

    exit_code = 1


class ConfigError(DDError):
    """The configuration is invalid: a key, a value, or a combination of settings."""

    exit_code = 2


class DataError(DDError):
    """Data could not be found or read; the message names the setting that points to local files."""

    exit_code = 2


class RunError(DDError):
    """A failure while running (non-finite loss, out of memory, unwritable output)."""

    exit_code = 1


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or ''."""
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    valid = sorted(valid)
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, valid)}; valid: {', '.join(valid)}")


def local_path(path) -> str:
    """A path as an error shows it: a relative one also as the absolute path it resolved to from the working
    directory (the *_offline datasets default to ../shared/data, relative to where dd-run was started)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return str(p)
    return f"{path} (= {p.resolve()} from the working directory; the *_offline datasets read $DD_RUNNER_SHARED_DATA)"

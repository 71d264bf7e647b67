"""Name -> implementation tables with lazy imports and "did you mean" errors.

Configs name implementations by key (`dataset.loader: idx_images`, `model.arch: lenet`,
`distill.engine: unroll`). A registry maps each key to either the object or a "module:attr" string that
is imported on first use, so `dd-run` imports transformers only when a text model is chosen.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Dict, Iterator, Optional

from dd_runner.core.errors import ConfigError, unknown


def import_path(path: str, setting: str) -> Callable:
    """A user's own implementation named "package.module:function", imported now: from an installed package,
    PYTHONPATH, or the working directory (searched last, as `python -m` would, so it never shadows an
    installed module). Anything that fails is one ConfigError line naming `setting`."""
    module, _, attr = str(path).partition(":")
    if not module or not attr:
        raise ConfigError(f"{setting}='{path}' is neither a registered name nor an import path 'package.module:function'")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        target = getattr(importlib.import_module(module), attr)
    except AttributeError:
        raise ConfigError(f"{setting}='{path}': the module {module} has no '{attr}'") from None
    except Exception as e:  # ModuleNotFoundError, or the user's module failing as it imports
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise ConfigError(f"{setting}='{path}' cannot be imported ({type(e).__name__}: {reason}): run dd-run from "
                          f"the folder holding {module.split('.')[0]}, or add that folder to PYTHONPATH") from None
    if not callable(target):
        raise ConfigError(f"{setting}='{path}' is a {type(target).__name__}, not a function")
    return target


class Registry:
    def __init__(self, kind: str, import_setting: Optional[str] = None):
        """`import_setting`: the config key whose value may also be an import path "package.module:function"
        (a user's own implementation, loaded on first use) besides the registered names."""
        self.kind = kind
        self.import_setting = import_setting
        self._entries: Dict[str, Any] = {}

    def add(self, name: str, target: Any) -> None:
        """Register `target`: an object, or a lazy "package.module:attribute" string."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = target

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator form of `add`."""

        def deco(obj: Any) -> Any:
            self.add(name, obj)
            return obj

        return deco

    def get(self, name: str) -> Any:
        if name not in self._entries:
            if self.import_setting and ":" in str(name):
                return import_path(name, self.import_setting)
            raise unknown(self.kind, name, self._entries)
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)

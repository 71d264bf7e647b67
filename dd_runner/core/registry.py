"""Name -> implementation tables with lazy imports and "did you mean" errors.

Configs name implementations by key (`dataset.loader: idx_images`, `model.arch: lenet`,
`distill.engine: unroll`). A registry maps each key to either the object or a "module:attr" string that
is imported on first use, so `dd-run` imports transformers only when a text model is chosen.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterator

from dd_runner.core.errors import unknown


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
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

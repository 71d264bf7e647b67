"""How a setting is declared: one place for its default, its help text, its allowed values and its range.

Every key of the schema (dd_runner/config/schema.py) is an `option(...)`: a dataclass field whose metadata
carries the help text, the allowed values (`choices`: a tuple, or "module:NAME" for a registry or a tuple
defined beside the code that implements them, read lazily) and, for numbers, the range (`bound`). `dd-run --help GROUP`, docs/reference/config.md
(scripts/config_reference.py) and the validation (dd_runner/config/validate*.py) all read them from here, so
a description or an allowed value is written once.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

from omegaconf import MISSING


@dataclass(frozen=True)
class Bound:
    """The values a number may take: `text` is what an error says it must be."""

    text: str
    ok: Callable[[float], bool]


POSITIVE = Bound("> 0", lambda v: v > 0)
NON_NEGATIVE = Bound(">= 0", lambda v: v >= 0)
FRACTION = Bound("in [0, 1)", lambda v: 0 <= v < 1)
UNIT = Bound("in [0, 1]", lambda v: 0 <= v <= 1)
SEED = Bound("in [-2**63, 2**63)", lambda v: -2 ** 63 <= v < 2 ** 63)  # torch.manual_seed overflows beyond
ANY = Bound("a number", lambda v: True)  # any finite value has a meaning

Choices = Union[Tuple[str, ...], str, None]


def option(default: Any = MISSING, help: str = "", *, choices: Sequence[str] | str | None = None,
           bound: Optional[Bound] = None) -> Any:
    """A schema field with its documentation. `choices`: the allowed values, or "module:ATTR" naming a
    registry (anything with .names()) imported only when the values are needed."""
    if not help:
        raise ValueError("every option needs a help text")
    metadata = {"help": " ".join(help.split()), "choices": choices if isinstance(choices, (str, type(None))) else tuple(choices),
                "bound": bound}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=metadata)
    return field(default=default, metadata=metadata)


def allowed(choices: Choices) -> Optional[Tuple[str, ...]]:
    """The allowed values of an option (a registry's names, read on demand), or None: any value."""
    if choices is None or isinstance(choices, tuple):
        return choices
    module, _, attr = choices.partition(":")
    values = getattr(importlib.import_module(module), attr)
    return tuple(values.names() if hasattr(values, "names") else values)


@dataclass(frozen=True)
class Setting:
    """One documented key of the schema."""

    key: str  # dotted, e.g. "distill.steps"
    type: str  # as a user reads it: int, float, str, bool, list[float], map, ...
    default: Any  # MISSING where a group option must set it
    help: str
    choices: Choices
    bound: Optional[Bound]

    @property
    def required(self) -> bool:
        return self.default is MISSING


def type_name(hint: Any) -> str:
    """int, float, str, bool, list[int], map; 'int or null' for Optional."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        inner = [a for a in args if a is not type(None)]
        base = " or ".join(type_name(a) for a in inner)
        return f"{base} or null" if len(inner) < len(args) else base
    if origin in (list, typing.List):
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin in (dict, typing.Dict):
        return "map"
    if hint is Any:
        return "any"
    return getattr(hint, "__name__", str(hint))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def settings(cls: type, prefix: str = "") -> Iterator[Setting]:
    """The documented keys of a schema class, in declaration order (nested schemas are not descended)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        if "help" not in f.metadata:
            raise ValueError(f"{cls.__name__}.{f.name} is declared without option(...): it has no help text")
        yield Setting(prefix + f.name, type_name(hints[f.name]), _default(f), f.metadata["help"],
                      f.metadata.get("choices"), f.metadata.get("bound"))

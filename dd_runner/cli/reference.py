"""The configuration reference, read from the schema (dd_runner/config/schema.py, schema_groups.py: each
key's type, default, help, allowed values and range) and the conf/ tree (each group's options and their
descriptions). `dd-run --help GROUP` prints one `Topic` as text (dd_runner/cli/help.py) and
scripts/config_reference.py writes them all as docs/reference/config.md (reference_markdown.py): the
same topics, so the terminal and the page cannot disagree.

An option's description is the first paragraph of the comment at the top of its YAML file (after any
`# @package` line, up to the first line that is not a comment or is a bare `#`); later paragraphs are
notes for readers of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from omegaconf import MISSING

from dd_runner.config.fields import Setting, allowed, settings
from dd_runner.config.schema import GROUP_SCHEMAS, METHOD_SCHEMAS, SECTION_SCHEMAS, MethodConfig, schema_of
from dd_runner.core.errors import ConfigError, did_you_mean

TOP = "top"
CONFIG_PACKAGE = "dd_runner.conf"
# Groups without keys of their own: their options set keys of the sections and groups.
SCHEMALESS = {  # group -> (heading, summary)
    "experiment": ("experiment=OPTION", "a preset that sets groups and keys together, e.g. a paper's setting "
                   "(none by default; the command line overrides it)."),
    "search": ("search=OPTION", "a hyper-parameter search for `dd-run -m` with Optuna (none by default)."),
    "recipe": ("recipe", "Settings for one model, chosen automatically with model=OPTION (never set on the "
               "command line); experiment presets and the command line override them."),
    "hydra/launcher": ("hydra/launcher=OPTION", "where the jobs of `dd-run -m` run (default: one after the "
                       "other in this process)."),
}


@dataclass(frozen=True)
class Entry:
    """A key of a topic; `methods`: for method-specific keys, the methods that have it."""

    setting: Setting
    methods: Tuple[str, ...] = ()


@dataclass
class Topic:
    name: str  # what `dd-run --help NAME` takes: a group, a section, or "top"
    heading: str  # dataset=OPTION, distill.*, top-level keys
    summary: str
    entries: List[Entry] = field(default_factory=list)
    options: Dict[str, str] = field(default_factory=dict)  # group option -> description
    default: Optional[str] = None  # the group's default option
    is_group: bool = False


def option_description(text: str) -> str:
    """The first paragraph of a YAML file's leading comment, as one line."""
    lines = []
    for line in text.splitlines():
        if line.startswith("# @package"):
            continue
        if not line.startswith("#") or not line.strip("# "):
            break
        lines.append(line[1:].strip())
    return " ".join(" ".join(lines).split())


def _folders(group: str, search_path: Sequence[str]) -> Iterable[Any]:
    """The folders holding a group's options, in Hydra's search order: conf/ first, then the user's."""
    yield files(CONFIG_PACKAGE).joinpath(group)
    for entry in search_path:
        if entry.startswith("file://"):
            yield Path(entry[len("file://"):]).expanduser() / group
        elif entry.startswith("pkg://"):
            yield files(entry[len("pkg://"):]).joinpath(group)


def group_options(group: str, search_path: Sequence[str] = ()) -> Dict[str, str]:
    """option -> description for every option of a group (where two folders have one, the first wins)."""
    out: Dict[str, str] = {}
    for folder in _folders(group, search_path):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if path.name.endswith(".yaml") and path.name[:-5] not in out:
                out[path.name[:-5]] = option_description(path.read_text())
    return dict(sorted(out.items()))


def group_defaults() -> Dict[str, Optional[str]]:
    """The default option of each group in conf/config.yaml's defaults list."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(str(files(CONFIG_PACKAGE).joinpath("config.yaml"))).defaults)
    return {k: v for entry in raw if isinstance(entry, dict) for k, v in entry.items() if " " not in k}


def _docstring(cls: type) -> Tuple[str, str]:
    """(heading, summary) from a schema class's docstring "distill.*: what it is."."""
    doc = " ".join((cls.__dict__.get("__doc__") or "").split())
    head, sep, rest = doc.partition(": ")
    if sep and " " not in head:
        return head, rest
    return "", doc


def _method_entries() -> List[Entry]:
    """method.name, then each method-specific key with the methods that have it (a key two methods
    declare alike is listed once)."""
    owners: Dict[Tuple[str, str, str], Tuple[Setting, List[str]]] = {}
    base = set(MethodConfig.__dataclass_fields__)
    for method, schema in METHOD_SCHEMAS.items():
        for s in settings(schema, "method."):
            if s.key[len("method."):] not in base:
                owners.setdefault((s.key, s.help, value_text(s.default)), (s, []))[1].append(method)
    return [*(Entry(s) for s in settings(MethodConfig, "method.")),
            *(Entry(s, tuple(methods)) for s, methods in owners.values())]


def topic_names() -> List[str]:
    return [*GROUP_SCHEMAS, *SCHEMALESS, *SECTION_SCHEMAS, TOP]


def topic(name: str, search_path: Sequence[str] = ()) -> Topic:
    """One group, section or the top level; ConfigError (one line) for an unknown name."""
    if name in GROUP_SCHEMAS:
        heading, summary = _docstring(GROUP_SCHEMAS[name])
        entries = _method_entries() if name == "method" else [Entry(s) for s in settings(GROUP_SCHEMAS[name], f"{name}.")]
        return Topic(name, heading, summary, entries, group_options(name, search_path),
                     group_defaults().get(name), is_group=True)
    if name in SCHEMALESS:
        heading, summary = SCHEMALESS[name]
        return Topic(name, heading, summary, [], group_options(name, search_path),
                     group_defaults().get(name), is_group=True)
    if name in SECTION_SCHEMAS:
        heading, summary = _docstring(SECTION_SCHEMAS[name])
        return Topic(name, heading, summary, [Entry(s) for s in settings(SECTION_SCHEMAS[name], f"{name}.")])
    if name == TOP:
        return Topic(TOP, "top-level keys", "settings outside any group or section.",
                     [Entry(s) for s in settings(schema_of(""))])
    raise ConfigError(f"unknown help topic '{name}'{did_you_mean(name, topic_names())}; valid: "
                      f"{', '.join(topic_names())}, or a key such as distill.steps")


def all_topics(search_path: Sequence[str] = ()) -> List[Topic]:
    return [topic(name, search_path) for name in topic_names()]


# --- how a key's facts read, in the terminal and in the Markdown ---------------------------------------
def value_text(value: Any) -> str:
    """A value as it is written on the command line / in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value else "''"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def default_text(setting: Setting) -> str:
    if setting.default is MISSING:
        return "set by each option" if setting.key.split(".")[0] in GROUP_SCHEMAS else "required"
    return value_text(setting.default)


def allowed_text(setting: Setting) -> str:
    """Allowed values and range: "adam, sgd"; "> 0"; "each > 0" for a list; "" where anything goes."""
    each = "each " if setting.type.startswith("list") else ""
    parts = []
    values = allowed(setting.choices)
    if values:
        parts.append(f"{each}one of {', '.join(values)}")
    if setting.bound is not None:
        parts.append(f"{each}{setting.bound.text}")
    return "; ".join(parts)


def methods_text(entry: Entry) -> str:
    return f"method={' / '.join(entry.methods)} only" if entry.methods else ""

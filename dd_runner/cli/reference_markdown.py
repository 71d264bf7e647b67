"""docs/reference/config.md: the topics of dd_runner.cli.reference as one Markdown page (written and
checked by scripts/config_reference.py; `dd-run --help GROUP` prints the same topics as text)."""

from __future__ import annotations

import re
from typing import List

from dd_runner.cli.reference import Entry, Topic, all_topics, allowed_text, default_text, methods_text

INTRO = """\
# Configuration reference

Every setting of `dd-run`: the config groups (`group=OPTION`) with their options, and every key
(`key=VALUE`) with its type, default, allowed values or range and meaning. This page is generated from
the schema (`dd_runner/config/schema.py`, `dd_runner/config/schema_groups.py`) and the option files in
`conf/` by `python scripts/config_reference.py`; `dd-run --help GROUP` prints the same in a terminal
(`dd-run --help distill`, `dd-run --help distill.steps`).

A group's option sets that group's keys; `dataset.KEY=VALUE` (and so on) then overrides a single one.
A misspelt group, option or key is refused before anything runs, with the valid names. Keys are set
with `key=VALUE`; a `+` (`+distill.stepz=3`) cannot add a key the schema lacks. Only the free-form maps
(`model.config_overrides`, `model.architecture`) take new entries with `+`.

## Options of your own

Keep your own options outside the package, in a folder laid out like `conf/`:
`<your conf dir>/dataset/<name>.yaml` starting with `defaults: [base_dataset]` (a new option of the
group; `base_model`, `base_init`, ... for the others) or with `defaults: [mnist_offline, _self_]` (an
existing option, changed). Add the folder with Hydra's `--config-dir` flag or `hydra.searchpath`; the
options in it are then checked, listed by `dd-run --help GROUP` and run like the shipped ones:

    dd-run --config-dir <your conf dir> dataset=<name>
    dd-run 'hydra.searchpath=[file://<absolute path of your conf dir>]' dataset=<name>
"""


def escape(text: str) -> str:
    """Text for a table cell: no column breaks, no HTML tags (<run dir>), no stray emphasis (*_offline); code spans
    (between backticks) keep their characters, but a '|' breaks a table row even there."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = re.sub(r"([<*])", r"\\\1", parts[i])
    return "`".join(parts).replace("|", "\\|")


def anchor(title: str) -> str:
    """The fragment GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _title(t: Topic) -> str:
    return "Top-level keys" if t.heading == "top-level keys" else t.name


def _row(entry: Entry) -> str:
    s = entry.setting
    description = " ".join(x for x in (f"({methods_text(entry)})" if entry.methods else "", s.help) if x)
    default = default_text(s) if s.required else f"`{default_text(s)}`"  # "required" is no value
    cells = [f"`{s.key}`", s.type, default, escape(allowed_text(s)), escape(description)]
    return "| " + " | ".join(cells) + " |"


def topic_markdown(t: Topic) -> List[str]:
    lines = [f"## {_title(t)}", ""]
    summary = f"`{t.heading}`: {t.summary}" if "=" in t.heading or "." in t.heading else t.summary[:1].upper() + t.summary[1:]
    if t.default:
        summary += f" Default option: `{t.default}`."
    lines += [escape(summary), ""]
    if t.options:
        lines += ["| Option | Description |", "| --- | --- |"]
        lines += [f"| `{name}` | {escape(text)} |" for name, text in t.options.items()]
        lines.append("")
    if t.entries:
        lines += ["| Key | Type | Default | Allowed values / range | Description |", "| --- | --- | --- | --- | --- |"]
        lines += [_row(e) for e in t.entries]
        lines.append("")
    return lines


def reference_markdown() -> str:
    topics = all_topics()
    contents = ", ".join(f"[{_title(t)}](#{anchor(_title(t))})" for t in topics)
    lines = [INTRO, "## Contents", "", contents, ""]
    for t in topics:
        lines += topic_markdown(t)
    return "\n".join(lines).rstrip() + "\n"

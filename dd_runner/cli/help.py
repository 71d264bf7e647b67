"""`dd-run --help [TOPIC ...] [overrides]`: the config groups with their options, the sections, and for a
topic (a group, a section, `top`, or one key) every key with its type, default, allowed values, range and
description. Everything is read from the schema and the conf/ tree (dd_runner.cli.reference), and from
the user's config folders (--config-dir, hydra.searchpath) where the command line names some.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import List, Sequence

from dd_runner.cli.reference import (SCHEMALESS, TOP, Entry, Topic, all_topics, allowed_text, default_text,
                                        methods_text, topic, topic_names)
from dd_runner.core.errors import ConfigError, did_you_mean

USAGE = """usage: dd-run [-m] [group=option ...] [key=value ...] [--config-dir DIR]

  dd-run                                        MNIST, LeNet, random init, hard labels
  dd-run init=fixed distill.steps=1 distill.epochs=3 distill.ipc=1
  dd-run -m init=fixed,random seed=0,1,2        a sweep (one job per combination)
  dd-run dataset=agnews model=distilbert        text: AG News x DistilBERT (english_quotes x gpt_neo: LM)
  dd-run resume=outputs/runs/<date>/<time>      continue a stopped run
  dd-run -m hydra/launcher=submitit_slurm ...   the sweep as Slurm jobs (pip install 'dd-runner[cluster]')
  dd-report outputs/multirun/<date>/<time>      a sweep's table, report.csv and report.png
  torchrun --nproc_per_node=K -m dd_runner ...  one run over K processes (GPUs)
  dd-run --config-dir DIR dataset=NAME          an option of your own, DIR/dataset/NAME.yaml
  dd-run --cfg job [overrides]                  print the composed config and exit (checked first)
  dd-run --help GROUP|SECTION|KEY               every key of a group or section: type, default, range
  dd-run --hydra-help                           Hydra's own flags
"""
INDENT = 6


def _width() -> int:
    return max(60, min(120, shutil.get_terminal_size((100, 24)).columns))


def _wrap(text: str, indent: int, first: str = "") -> List[str]:
    """`text` wrapped under `indent` spaces; `first` (padded to the indent) starts the first line."""
    lines = textwrap.wrap(text, _width() - indent, break_long_words=False, break_on_hyphens=False) or [""]
    pad = " " * indent
    if not first or len(first) < indent:
        out = [first.ljust(indent) + lines[0]]
    else:  # a name longer than the column: the text starts on the next line
        out = [first.rstrip(), pad + lines[0]]
    return [*out, *(pad + line for line in lines[1:])] if lines[0] else [first.rstrip()]


def entry_text(entry: Entry) -> List[str]:
    s = entry.setting
    facts = [s.type, f"default {default_text(s)}", allowed_text(s), methods_text(entry)]
    head = textwrap.wrap(f"{s.key}  ({'; '.join(f for f in facts if f)})", _width(), initial_indent="  ",
                         subsequent_indent=" " * INDENT, break_long_words=False, break_on_hyphens=False)
    return [*head, *_wrap(s.help, INDENT)]


def _options_text(options: dict, indent: int, name_width: int = 24) -> List[str]:
    lines = []
    for name, description in options.items():
        lines += _wrap(description or "(no description)", indent + name_width, " " * indent + name)
    return lines


def topic_text(t: Topic) -> str:
    head = f"{t.heading}: {t.summary}" if t.heading else t.summary
    lines = _wrap(head, 0)
    if t.is_group:
        lines += ["", f"options ({t.name}=OPTION{f'; default: {t.default}' if t.default else ''}):"]
        lines += _options_text(t.options, 2)
    if t.entries:
        where = f"{t.name}.KEY=VALUE overrides the option's value" if t.is_group else "KEY=VALUE"
        lines += ["", f"keys ({where}):"]
        for entry in t.entries:
            lines += entry_text(entry)
    if t.is_group and t.name not in SCHEMALESS:
        lines += [""] + _wrap(f"An option of your own: DIR/{t.name}/NAME.yaml starting with `defaults: "
                              f"[base_{t.name}]` (or `defaults: [OPTION, _self_]` to change an option above), "
                              f"then dd-run --config-dir DIR {t.name}=NAME (or hydra.searchpath=[file://DIR]).", 0)
    return "\n".join(lines)


def key_text(key: str) -> str:
    entries = {e.setting.key: e for t in all_topics() for e in t.entries}
    if key not in entries:
        section = key.split(".")[0]
        raise ConfigError(f"unknown key '{key}'{did_you_mean(key, entries)}; dd-run --help "
                          f"{section if section in topic_names() else TOP} lists the keys")
    return "\n".join(entry_text(entries[key]))


def overview(search_path: Sequence[str] = ()) -> str:
    topics = all_topics(search_path)
    lines = [USAGE, "config groups (group=OPTION; dd-run --help GROUP for its keys):"]
    for t in (t for t in topics if t.is_group):
        default = f" (default: {t.default})" if t.default else ""
        lines += textwrap.wrap(f"{t.name}{default}: {t.summary}", _width(), initial_indent="  ",
                               subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
        lines += _options_text(t.options, 4)
    lines += ["", "sections (KEY=VALUE; dd-run --help SECTION for every key, its type, default and range):"]
    for t in (t for t in topics if not t.is_group):
        summary = t.summary[:1].upper() + t.summary[1:] if t.name != TOP else \
            f"{', '.join(e.setting.key for e in t.entries)}."
        lines += _wrap(summary, 14, f"  {t.name}")
    lines += [""] + _wrap("Every key of a group or section: dd-run --help GROUP (e.g. dd-run --help distill, "
                          "dd-run --help distill.steps), or docs/reference/config.md. Options of your own: "
                          "DIR/<group>/<option>.yaml, then dd-run --config-dir DIR group=option (or "
                          "hydra.searchpath=[file://DIR]); dd-run --help GROUP shows how to start one.", 0)
    return "\n".join(lines)


def help_for(argv: List[str]) -> str:
    """The help a command line asks for. Words without '=' are topics; overrides (key=value) are checked
    as a run would check them, and --config-dir / hydra.searchpath add the user's options to the lists."""
    from dd_runner.cli.command_line import parse
    from dd_runner.cli.preflight import preflight

    rest = [a for a in argv if a not in ("-h", "--help")]
    cmd = parse(rest)
    words = cmd.overrides if cmd is not None else [a for a in rest if not a.startswith("-")]
    topics = [w for w in words if "=" not in w and not w.startswith(("~", "+"))]
    search_path = cmd.search_path() if cmd is not None else []
    if len(topics) < len(words):  # overrides: the same pre-flight check as a run
        preflight([a for a in rest if a not in topics])
    if not topics:
        return overview(search_path)
    return "\n\n".join(key_text(name) if "." in name and "/" not in name else topic_text(topic(name, search_path))
                       for name in topics)

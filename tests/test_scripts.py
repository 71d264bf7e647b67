"""The comparison script runs every method family and baseline end to end at its --quick size (real
dd-run processes on the offline MNIST split) and continues where it stopped; the figures are its business."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, SHARED_DATA, shared_data


def compare(out, *args, ok=True):
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "COLUMNS": "250"}
    proc = subprocess.run([sys.executable, "scripts/compare_methods.py", "--quick", "--models", "lenet", "--ipc", "1",
                           "--out", str(out), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert (proc.returncode == 0) == ok, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout if ok else proc.stderr


def test_compare_methods_quick_runs_every_method_and_continues(tmp_path):
    shared_data("mnist")
    out = compare(tmp_path)
    assert (tmp_path / "experts-lenet" / "experts").is_dir()  # trajectory matching trained its experts first
    for method in ("pm", "gm", "dm", "mtt"):
        metrics = json.loads((tmp_path / f"lenet-ipc1-{method}" / "metrics.json").read_text())
        assert metrics["test/n_nets"] == 2 and 0.0 <= metrics["test/acc_mean"] <= 1.0
    for b in ("random_real", "herding", "kcenter", "kmeans"):  # each baseline is its own mode=baselines cell
        metrics = json.loads((tmp_path / f"lenet-ipc1-baseline-{b}" / "metrics.json").read_text())
        assert metrics[f"baselines/{b}/n_nets"] == 2 and not any(k.startswith("test/") for k in metrics)
    row = next(line for line in out.splitlines() if "lenet" in line and "│" in line)
    assert row.count("±") == 8  # four methods and four baselines
    markdown = (tmp_path / "table.md").read_text()  # the same table, for the README
    md_row = next(line for line in markdown.splitlines() if line.startswith("| lenet | 1 |"))
    assert md_row.count("±") == 8 and "protocol: eval.schedule=train: 5 epochs" in markdown and "(not tuned)" in markdown
    assert json.loads((tmp_path / "table.json").read_text())["tables"][0]["rows"][0][:2] == ["lenet", "1"]
    again = compare(tmp_path, "--methods", "gm", "--baselines")  # every cell is on disk: nothing runs again
    assert "$ dd-run" not in again and "lenet ipc=1 gm" in again
    row = next(line for line in again.splitlines() if "lenet" in line and "│" in line)
    assert row.count("±") == 5  # the baselines already run are shown
    refused = compare(tmp_path, "--methods", "gm", "--baselines", "--", "eval.nets=3", ok=False)
    assert refused.strip() == (f"compare_methods: {tmp_path / 'lenet-ipc1-gm'} was run with other settings "
                               "(eval.nets: 2 -> 3); pass another --out or delete that directory")  # never stale figures

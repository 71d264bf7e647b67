"""The diagnostic scripts re-train a finished run's networks outside dd-run: their unrestricted row must
reproduce the run's own test figure, and the restricted rows must train what they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dd_runner.run import run

from conftest import MNIST_OFFLINE, REPO, SHARED_DATA, TINY, compose_cfg
from text_helpers import AGNEWS_TINY, TEXT_TINY


def script(name: str, *args: str) -> dict:
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, f"scripts/{name}", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_split_accuracy_reproduces_the_runs_test_figure(mnist_overrides, tmp_path):
    run(compose_cfg(["dataset=mnist_offline", *MNIST_OFFLINE, *TINY, "init=fixed", f"output_dir={tmp_path}"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    row = script("split_accuracy.py", str(tmp_path))
    assert row["test"]["acc_mean"] == pytest.approx(metrics["test/acc_mean"], abs=1e-6)
    assert (row["train"]["examples"], row["val"]["examples"], row["test"]["examples"]) == (7200, 800, 2000)


def test_frozen_parts_trains_what_each_row_names(pretrained_dirs, tmp_path):
    model = ["model=distilbert", f"model.name_or_path={pretrained_dirs['distilbert']}"]  # tiny body, new head
    cfg = compose_cfg(AGNEWS_TINY + TEXT_TINY + model + ["init=random", "eval.baselines=[]", f"output_dir={tmp_path}"])
    run(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    row = script("frozen_parts.py", str(tmp_path), "--nets", "2")
    # "all" is the run's protocol on the run's own unseen heads: the run's figure, net for net
    assert row["all"]["acc_mean"] == pytest.approx(metrics["test/acc_mean"], abs=1e-6)
    # DistilBERT's new head is pre_classifier + classifier (32x32 + 32 and 32x4 + 4 in the tiny model)
    assert row["head only"]["parameters"] == 32 * 32 + 32 + 32 * 4 + 4
    assert row["head only"]["parameters"] + row["body only"]["parameters"] == row["all"]["parameters"]
    assert all(len(row[part]["accs"]) == 2 for part in ("all", "head only", "body only"))

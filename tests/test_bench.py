"""scripts/bench.py runs end to end (one small section, in subprocesses as in a full run) and writes
its JSON; the figures themselves are the benchmark's business, not the tests'."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, SHARED_DATA, shared_data


def test_bench_amp_section_writes_json(tmp_path):
    shared_data("mnist")
    out = tmp_path / "bench.json"
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA)}
    proc = subprocess.run([sys.executable, "scripts/bench.py", "--quick", "--only", "amp", "--threads", "1",
                           "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    assert all(r["kind"] == "cosine" and "error" not in r for r in rows.values()), rows
    assert 0.5 < rows["lenet"]["cosine"] < 1.0  # bf16 moved the gradient a little, not much
    if "minilm-pretrained" in rows:  # with the test extra installed: a real pretrained encoder (0.998 measured)
        assert 0.95 < rows["minilm-pretrained"]["cosine"] < 1.0
    assert "meta-grad cosine bf16 vs fp32" in proc.stdout

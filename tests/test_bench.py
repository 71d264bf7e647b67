"""scripts/bench.py runs end to end (one small section, in subprocesses as in a full run) and writes
its JSON; the figures themselves are the benchmark's business, not the tests'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_case_set_up_twice_builds_the_same_network_and_set(monkeypatch):
    """A model built from a config draws its body from the global generator: a case's two set-ups (fp32 and
    bf16 in the cosine case) must seed it as dd-run does, or they compare two different networks (the GPU
    check once read a bf16 cosine of 0.037 for GPT-Neo-125M that way; 0.99997 once seeded)."""
    import torch

    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from benchmark.cases import setup
    from dd_runner.data.hub import minilm_stand_in

    shared_data("english_quotes")
    monkeypatch.setenv("DD_RUNNER_SHARED_DATA", str(SHARED_DATA))
    case = dict(model="gpt_neo-tiny", engine="unroll", T=1, nets=1, batch=8, device="cpu",
                overrides=[f"model.tokenizer={minilm_stand_in()}"])
    built = []
    for precision in ("fp32", "bf16"):
        cfg, _, _, learner, synth, inits = setup(case, precision)
        built.append((learner.module.state_dict(), inits.train_nets(0, 1)[0], [t.detach() for t in synth.learnable()]))
        torch.randn(100)  # whatever ran in between must not matter
    (state_a, theta_a, synth_a), (state_b, theta_b, synth_b) = built
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert all(torch.equal(a, b) for a, b in zip(theta_a, theta_b))
    assert all(torch.equal(a, b) for a, b in zip(synth_a, synth_b))


def test_a_step_case_counts_operations_faults_and_autograd_nodes(monkeypatch):
    """The step section's figures for MNIST fixed init at a small real batch: ATen operations per outer step
    (the same on every machine: the count is exact), the operators and autograd nodes they come from, minor
    page faults and CPU time per step."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from benchmark.cases import measure

    shared_data("mnist")
    monkeypatch.setenv("DD_RUNNER_SHARED_DATA", str(SHARED_DATA))
    case = dict(section="step", kind="engine", model="lenet", init="fixed", steps=1, T=3, nets=1, batch=64,
                engine="unroll", precision="fp32", overrides=[], ops=True, allocator="system", device="cpu",
                threads=1, repeats=2)
    result = measure(case)
    assert sum(n for _, n in result["op_table"]) <= result["ops"]
    assert 500 < result["ops"] < 2000 and dict(result["op_table"])["convolution"] > 0
    nodes = dict(result["op_nodes"])
    assert "ConvolutionBackward0" in nodes or "ConvolutionBackwardBackward0" in nodes
    assert result["faults_per_step"] >= 0 and 0 < result["cpu_seconds"] <= result["cpu_median"]


def test_against_measures_a_case_with_dd_runner_at_a_commit(monkeypatch):
    """--against REF stages dd_runner (and its configs) at REF and measures the case with it: here REF is
    HEAD, so both sides count the same operations."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench
    from benchmark.against import commit_of, staged

    shared_data("mnist")
    monkeypatch.setenv("DD_RUNNER_SHARED_DATA", str(SHARED_DATA))
    head = commit_of("HEAD")
    assert (Path(staged(head)) / "dd_runner" / "conf" / "config.yaml").is_file()
    with pytest.raises(ValueError, match="not a commit"):
        commit_of("no-such-ref")
    case = dict(section="step", kind="engine", model="lenet", init="fixed", steps=1, T=1, nets=1, batch=32,
                engine="unroll", precision="fp32", overrides=[], ops=True, allocator="system", device="cpu",
                threads=1, repeats=1)
    old, new = bench.run_case({**case, "ref": head}), bench.run_case(case)
    assert "error" not in old and "error" not in new, (old, new)
    assert old["ops"] == new["ops"] > 0

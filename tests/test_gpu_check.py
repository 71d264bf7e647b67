"""scripts/gpu_check.py, the GPU run book, at toy sizes on a CPU (`--device cpu --tiny`): every section runs
and lands in its JSON and Markdown; and --pack carries what a machine without network lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, SHARED_DATA, shared_data

SECTIONS = ["imports", "cuda_tests", "bench", "captured", "mnist_fixed", "mnist_random", "agnews"]


def test_tiny_gpu_check_writes_every_section(tmp_path):
    shared_data("mnist")
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA)}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--out", str(out), "--device", "cpu", "--tiny",
                           "--work", str(tmp_path / "work")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "gpu_check.json", "gpu_check.md"]
    record = json.loads((out / "gpu_check.json").read_text())
    sections = record["sections"]
    assert list(sections) == SECTIONS
    for name, section in sections.items():
        assert section["status"] == "ok" or section["status"].startswith("skipped: no MiniLM"), (name, section)
    assert sections["cuda_tests"]["headline"].get("skipped", 0) + sections["cuda_tests"]["headline"].get("passed", 0) >= 9
    bench = sections["bench"]["figures"]
    assert 0.99 < bench.get("cosine_minilm-pretrained", 0.995) <= 1.0 and "vmap_speedup_T10_nets4" in bench
    assert bench["distilbert-tiny_unroll_bf16_tflops"] > 0 and bench["distilbert-tiny_unroll_bf16_bf16_speedup"] > 0
    captured = sections["captured"]  # a CPU: the step on static buffers, eagerly, equals eager exactly
    assert captured["max_rel_l2"] == 0.0 and not captured["all_captured"] and len(captured["figures"]) == 2
    fixed = sections["mnist_fixed"]
    assert fixed["finished"] and [p["iteration"] for p in fixed["curve"]] == [5, 10, 15, 20]
    assert fixed["figures"]["cuda_graph"].startswith("auto: the outer step runs eagerly (the device is cpu")
    for engine in ("vmap", "unroll"):
        run = sections["mnist_random"]["runs"][engine]
        assert run["s_per_iteration"] > 0 and run["projected_seconds"] > 0
    table = (out / "gpu_check.md").read_text()
    for name in SECTIONS:
        assert f"| {name} | " in table
    targets = [t for t in record["targets"]]
    assert len(targets) == 7 and all(t["verdict"] in ("n/a (not a GPU)", "not measured") for t in targets)
    assert table.count("| target | ") == 7


def test_pack_carries_data_and_a_half_precision_minilm(tmp_path):
    from safetensors import safe_open

    from dd_runner.data.hub import minilm_stand_in

    minilm = minilm_stand_in()
    wheels = tmp_path / "whl"
    wheels.mkdir()
    (wheels / "wandb-0.0-py3-none-any.whl").write_bytes(b"x")
    sys.path.insert(0, str(REPO / "scripts"))
    from benchmark.pack import pack

    pack(tmp_path / "gpu", SHARED_DATA, minilm, wheels)
    assert (tmp_path / "gpu/data/mnist").is_dir() and (tmp_path / "gpu/data/ag_news/test.csv").is_file()
    assert not list(wheels.iterdir())  # logger=none throughout: the wandb wheel stays behind
    if minilm:
        with safe_open(tmp_path / "gpu/minilm/model.safetensors", "pt") as f:
            assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} <= {"F16", "I64"}
        assert (tmp_path / "gpu/minilm/vocab.txt").read_bytes() == (minilm / "vocab.txt").read_bytes()

"""scripts/gpu_check.py, the GPU run book, at toy sizes on a CPU (`--device cpu --tiny`): every section runs
and lands in its JSON and Markdown; and --pack carries what a machine without network lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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


@pytest.mark.slow
def test_cifar10_section_runs_each_preset_on_cifar_shaped_images(tmp_path):
    """--only cifar10 (not in the default check): each CIFAR-10 preset runs end to end on generated 3x32x32
    images; at toy sizes nothing is projected."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "scripts/gpu_check.py", "--out", str(out), "--device", "cpu", "--tiny",
                           "--only", "imports,cifar10", "--work", str(tmp_path / "work")], cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    section = json.loads((out / "gpu_check.json").read_text())["sections"]["cifar10"]
    assert section["status"] == "ok" and len(section["runs"]) == 3
    for preset, run in section["runs"].items():
        assert run["finished"] and run["distill/iterations"] == 2 and run["distill/seconds_per_iteration"] > 0
        assert f"experiment={preset}" in run["command"] and "dataset=image_folder" in run["command"]
        assert run["projected_seconds"] is None
    log = (tmp_path / "work" / "runs" / "cifar10_distribution_10" / "dd-run.log").read_text()
    assert "images 3x32x32" in log and "train 320" in log  # 10 classes x 40 images, 80% for training


def test_cifar10_projection_is_each_presets_own_budget(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    from benchmark.cifar_cost import cifar_cost

    seen = []

    def dd_run(name, overrides, budget):  # the measured figures of a short run, as Check.dd_run reports them
        seen.append((name, overrides))
        return {"status": "ok", "distill/seconds_per_iteration": 0.5, "eval/seconds": 3.0}

    section = cifar_cost(dd_run, tmp_path, 90.0, tiny=False, per_class=3)
    assert [name for name, _ in seen] == ["cifar10_distribution_10", "cifar10_gradient_10", "cifar10_performance_10"]
    # DM: 20,000 iterations and 20 networks (main_DM.py); DC: 1,000 and 20 (main.py)
    assert section["runs"]["cifar10_distribution_10"]["projected_seconds"] == 0.5 * 20000 + 3.0 * 20
    assert section["runs"]["cifar10_gradient_10"]["projected_seconds"] == 0.5 * 1000 + 3.0 * 20
    folder = tmp_path / "cifar_shaped"
    assert sorted(p.name for p in folder.iterdir()) == [str(c) for c in range(10)]
    assert all(len(list((folder / str(c)).glob("*.png"))) == 3 for c in range(10))
    assert all(f"dataset.root={folder}" in overrides and "distill.iterations=20" in overrides for _, overrides in seen)


def test_the_gpu_check_page_shows_each_sections_budget():
    sys.path.insert(0, str(REPO / "scripts"))
    import gpu_check

    page = (REPO / "docs" / "results" / "gpu-check.md").read_text()
    shown = {line.split("|")[1].strip().split()[0].strip("`"): line.split("|")[2].strip()
             for line in page.splitlines() if line.startswith("| `")}
    assert shown == {"imports": "-", **{k: str(v) for k, v in {**gpu_check.BUDGETS, **gpu_check.OPTIONAL}.items()}}

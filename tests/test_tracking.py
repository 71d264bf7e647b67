"""How a run shows on W&B, read from what an offline run wrote: curves against the outer iteration, the set
at every validation point under one media key, the learned lrs, the set as a staged Artifact; and the
snapshots / evolution.png on disk."""

from __future__ import annotations

import json

import pytest

from dd_runner import load_distilled
from dd_runner.core.errors import DataError
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data
from wandb_files import by_type, history_rows

RUN = ["logger=wandb", "logger.mode=offline", "logger.log_checkpoints=true", "init=fixed", "distill.steps=1",
       "distill.epochs=2", "distill.iterations=15", "eval.every=5", "device=cpu"]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    shared_data("mnist")
    out = tmp_path_factory.mktemp("logged")
    metrics = run(compose_cfg(MNIST_OFFLINE + TINY + RUN + [f"output_dir={out}"]))
    return out, metrics, by_type(out)


def test_snapshots_at_every_validation_point(logged_run):
    out, metrics, _ = logged_run
    assert sorted(int(p.stem) for p in (out / "snapshots").glob("*.safetensors")) == [5, 10, 15]
    vals = {}
    for it in (5, 10, 15):
        snap = load_distilled(out / "snapshots" / f"{it}.safetensors")
        assert snap.metadata["iteration"] == str(it) and snap.data.shape == (1, 10, 1, 28, 28)
        assert snap.config["init"]["mode"] == "fixed"  # the header of the kept set, minus theta_0
        with pytest.raises(DataError, match="holds no initial weights"):
            snap.model()
        vals[it] = float(snap.metadata["val_acc"])
    kept = load_distilled(out / "distilled.safetensors")
    best = max(vals, key=lambda it: (vals[it], -it))  # the first of equals is kept
    assert metrics["distill/kept_iteration"] == best
    assert kept.data.equal(load_distilled(out / "snapshots" / f"{best}.safetensors").data)
    assert (out / "evolution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wandb_shows_the_distillation(logged_run):
    out, metrics, records = logged_run
    rows = history_rows(out)
    media = [(int(r["iteration"]), json.loads(r["distilled/evolution/caption"])) for r in rows if "distilled/evolution/path" in r]
    assert [it for it, _ in media] == [5, 10, 15]  # one image per validation point, under one key, at its iteration
    assert all(caption.startswith(f"iteration {it}: val acc") for it, caption in media)
    for it, _ in media:
        path = next(json.loads(r["distilled/evolution/path"]) for r in rows if r.get("iteration") == str(it) and "distilled/evolution/path" in r)
        assert next(out.glob("wandb/offline-run-*/files")).joinpath(path).is_file()
    assert any("distilled/lrs_table/path" in r for r in rows)  # the learned lrs as a line plot's table
    assert any("distill/peak_memory_mb" in r and "eval/seconds" in r for r in rows)
    metrics_defined = {m.name or m.glob_name: m for m in records["metric"]}
    assert metrics_defined["distill/*"].step_metric == "iteration" and metrics_defined["val/*"].step_metric == "iteration"
    assert metrics_defined["val/acc_mean"].summary.max
    summary = {}
    for s in records["summary"]:
        summary.update({u.key: json.loads(u.value_json) for u in s.update})
    assert "val/acc_mean" not in summary or summary["val/acc_mean"] == max(
        json.loads(r["val/acc_mean"]) for r in rows if "val/acc_mean" in r)
    assert summary["test/acc_mean"] == metrics["test/acc_mean"]


def test_the_set_is_a_staged_artifact(logged_run):
    out, metrics, records = logged_run
    artifacts = {a.type: a for a in records["artifact"]}
    art = artifacts["distilled-dataset"]
    assert set(art.aliases) == {"latest", "best"}
    meta = json.loads(art.metadata)
    assert meta["metrics"]["test/acc_mean"] == metrics["test/acc_mean"] and meta["config"]["init"]["mode"] == "fixed"
    files = {e.path: e.local_path for e in art.manifest.contents}
    assert set(files) == {"distilled.safetensors", "images.png", "evolution.png"}
    for name, local in files.items():  # staged inside the run directory, with the bytes of the run's file
        assert local.startswith(str(out / "wandb" / "artifacts")), local
        assert open(local, "rb").read() == (out / name).read_bytes()
    assert artifacts["checkpoint"].manifest.contents[0].path == "checkpoint.safetensors"  # logger.log_checkpoints


def test_snapshots_can_be_turned_off(mnist_overrides, tmp_path):
    run(compose_cfg(mnist_overrides + TINY + ["init=fixed", "distill.steps=1", "eval.every=1", "eval.snapshots=false",
                                              f"output_dir={tmp_path}"]))
    assert not (tmp_path / "snapshots").exists() and not (tmp_path / "evolution.png").exists()
    assert (tmp_path / "distilled.safetensors").is_file()

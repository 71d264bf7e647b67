"""`load_distilled` checks the header it reads: a set (or snapshot) whose header was altered fails on loading
with one DataError line naming the file and the field, not later in `model()` / `train()` with a raw error."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dd_runner import load_distilled
from dd_runner.core.errors import DataError
from dd_runner.data import load_data
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A real set from a two-iteration run, with a snapshot at each validation point."""
    shared_data("mnist")
    out = tmp_path_factory.mktemp("tiny_set")
    metrics = run(compose_cfg(MNIST_OFFLINE + TINY + [
        "device=cpu", "init=fixed", "distill.steps=2", "distill.epochs=2", "distill.iterations=2", "eval.every=1",
        f"output_dir={out}"]))
    return out, metrics


def read(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


DROP = "<drop>"


def tampered(source, target, meta=None, protocol=None, **tensors):
    """A copy of `source` with header fields (`meta`), protocol entries (DROP deletes) or tensors replaced."""
    original, header = read(source)
    header.update(meta or {})
    if protocol is not None:
        merged = {**json.loads(header["protocol"]), **protocol}
        header["protocol"] = json.dumps({k: v for k, v in merged.items() if v != DROP})
    save_file({**original, **tensors}, str(target), metadata=header)
    return target


CASES = [
    ("config", dict(meta={"config": "{not json"}), "'config' is not a JSON object"),
    ("config sections", dict(meta={"config": json.dumps({"dataset": {}})}), "'config' lacks model, init"),
    ("metrics", dict(meta={"metrics": "[1, 2"}), "'metrics' is not a JSON object"),
    ("epochs text", dict(meta={"epochs": "two"}), "'epochs' is 'two', not a positive integer"),
    ("epochs zero", dict(meta={"epochs": "0"}), "'epochs' is '0', not a positive integer"),
    ("epochs vs lrs", dict(meta={"epochs": "3"}), "'lrs' has shape (4,), not (6,)"),
    ("lrs", dict(lrs=torch.ones(5)), "'lrs' has shape (5,)"),
    ("targets", dict(targets=torch.ones(3, 10, 10)), "'targets' has shape (3, 10, 10)"),
    ("classes", dict(classes=torch.zeros(10)), "'classes' has shape (10,) (torch.float32)"),
    ("temperature", dict(meta={"temperature": "warm", "alpha": "0.9"}), "'temperature' is 'warm', not a number"),
    ("protocol keys", dict(protocol={"augment": DROP, "seed": DROP}), "'protocol' lacks augment, seed"),
    ("schedule", dict(protocol={"schedule": "sgd"}), "has schedule 'sgd'"),
    ("lr", dict(protocol={"lr": -1}), "has lr -1"),
    ("train_epochs", dict(protocol={"train_epochs": 2.5}), "has train_epochs 2.5"),
    ("augment", dict(protocol={"augment": {"name": "dsa", "strategy": "crop"}}), "augment dsa without scale, rotate"),
    ("models", dict(protocol={"models": {"mlp": {"lr": 0.1}}}), "has models that are not"),
]


@pytest.mark.parametrize("name,change,message", CASES, ids=[c[0] for c in CASES])
def test_an_altered_header_is_one_line_naming_the_file_and_field(tiny_set, tmp_path, name, change, message):
    out, _ = tiny_set
    path = tampered(out / "distilled.safetensors", tmp_path / "distilled.safetensors", **change)
    with pytest.raises(DataError) as e:
        load_distilled(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_newer_format_is_refused_naming_the_writer(tiny_set, tmp_path):
    out, _ = tiny_set
    provenance = json.dumps({"dd_runner": "9.1.0"})
    path = tampered(out / "distilled.safetensors", tmp_path / "d.safetensors",
                    meta={"format": "dd-runner/9", "provenance": provenance})
    with pytest.raises(DataError, match=r"written by dd-runner 9\.1\.0 \(format dd-runner/9\).*upgrade dd-runner"):
        load_distilled(path)


def test_a_version_2_file_still_loads_and_trains(tiny_set, tmp_path):
    """dd-runner/2 kept the augmentation in the config only: read it from there."""
    out, metrics = tiny_set
    path = tampered(out / "distilled.safetensors", tmp_path / "d.safetensors", meta={"format": "dd-runner/2"},
                    protocol={"augment": DROP, "models": DROP, "lr_grid": DROP})
    d = load_distilled(path)
    assert d.evaluate(d.train(d.model()), d.test_data())["acc"] == metrics["test/acc_mean"]


def test_snapshots_are_checked_and_replay_their_validation(tiny_set, tmp_path):
    """A snapshot holds the set at a validation point: trained from the run's theta_0 by the protocol, it
    gives the validation accuracy in its header; an altered snapshot header is one line too."""
    out, _ = tiny_set
    snapshot = load_distilled(out / "snapshots" / "1.safetensors")
    full = load_distilled(out / "distilled.safetensors")
    config = full.config
    from omegaconf import OmegaConf

    val = load_data(OmegaConf.create(config["dataset"]), OmegaConf.create(config["model"])).val
    net = snapshot.train(full.model())  # a snapshot keeps no theta_0: the run's file has it
    assert snapshot.evaluate(net, val)["acc"] == float(snapshot.metadata["val_acc"])
    for meta, message in [({"iteration": "first"}, "'iteration' is 'first'"), ({"val_acc": "high"}, "'val_acc' is 'high'")]:
        path = tampered(out / "snapshots" / "1.safetensors", tmp_path / "1.safetensors", meta=meta)
        with pytest.raises(DataError, match=message):
            load_distilled(path)

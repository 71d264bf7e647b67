"""dd-run end to end on the offline MNIST split, on CPU, with W&B offline: artefacts, their keys, and a
distilled set that beats random real images at the same budget."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from safetensors import safe_open

from dd_runner import load_distilled
from dd_runner.data import load_data
from dd_runner.models.lenet import LeNet
from dd_runner.run import run

from conftest import TINY, compose_cfg


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory):
    from conftest import MNIST_OFFLINE, shared_data

    shared_data("mnist")
    out = tmp_path_factory.mktemp("fixed_run")
    cfg = compose_cfg(MNIST_OFFLINE + [
        "logger=wandb", "logger.mode=offline", "init=fixed", "distill.steps=1", "distill.epochs=3",
        "distill.ipc=1", "distill.iterations=150", "distill.batch_size=256", "distill.lr=0.05",
        "distill.decay_every=100", "eval.every=50",
        "eval.baselines=[random_real,class_mean]", "eval.lr_grid=[0.01,0.1,0.3,1.0]", "eval.tune_nets=1",
        "device=cpu", f"output_dir={out}"])
    return cfg, out, run(cfg)


def test_artefacts_and_metric_keys(fixed_run):
    cfg, out, metrics = fixed_run
    for name in ("distilled.safetensors", "metrics.json", "images.png", "config.yaml"):
        assert (out / name).is_file(), name
    written = json.loads((out / "metrics.json").read_text())
    assert written == pytest.approx(metrics)
    for key in ("test/acc_mean", "test/acc_std", "test/n_nets", "val/acc_mean",
                "baselines/random_real/acc_mean", "baselines/random_real/acc_std", "baselines/random_real/lr",
                "baselines/random_real_learned_lrs/acc_mean", "baselines/class_mean/acc_mean",
                "distill/seconds", "eval/seconds"):
        assert key in written, key
    assert written["test/n_nets"] == 1  # fixed init: its one theta_0
    assert written["distill/kept_iteration"] in (50, 100, 150)  # the best of the validated sets (eval.every=50)
    with safe_open(str(out / "distilled.safetensors"), "pt") as f:
        meta = f.metadata()
        assert {k for k in f.keys() if not k.startswith("init/")} == {"data", "targets", "lrs", "classes"}
        assert {k for k in f.keys() if k.startswith("init/")} == {f"init/{n}" for n, _ in LeNet().named_parameters()}
        assert f.get_tensor("data").shape == (1, 10, 1, 28, 28) and f.get_tensor("lrs").shape == (3,)
    assert {"dataset": "mnist", "model": "lenet", "steps": "1", "epochs": "3", "label_type": "hard",
            "init_mode": "fixed", "seed": "0"}.items() <= meta.items()
    assert json.loads(meta["normalisation"]) == {"mean": [0.1307], "std": [0.3081]}
    # the resolved config, not interpolations
    assert "${" not in (out / "config.yaml").read_text()
    # W&B offline files live in the run directory
    assert list((out / "wandb").glob("offline-run-*")), "no offline W&B run in the run directory"


def test_distilled_beats_random_real_at_equal_budget(fixed_run):
    _, _, m = fixed_run
    assert m["test/acc_mean"] > m["baselines/random_real/acc_mean"] + 0.1, m
    assert m["test/acc_mean"] > m["baselines/random_real_learned_lrs/acc_mean"] + 0.1, m


def test_load_distilled_trains_a_lenet_to_the_reported_accuracy(fixed_run):
    """The public loader gives what is needed to reproduce the reported figure outside dd-runner."""
    cfg, out, metrics = fixed_run
    distilled = load_distilled(out / "distilled.safetensors")
    assert len(distilled.steps()) == 3 and distilled.normalisation["mean"] == [0.1307]

    net = distilled.model()  # fixed init: the run's theta_0, stored in the file
    distilled.train(net)
    acc = distilled.evaluate(net, distilled.test_data())["acc"]
    assert acc == pytest.approx(metrics["test/acc_mean"], abs=1e-3)


def test_random_init_evaluates_unseen_nets(mnist_overrides, tmp_path):
    cfg = compose_cfg(mnist_overrides + TINY + ["init=random", "distill.steps=2", "distill.epochs=2",
                                                "distill.sample_nets=2", "eval.nets=3", f"output_dir={tmp_path}"])
    metrics = run(cfg)
    assert metrics["test/n_nets"] == 3 and metrics["test/acc_std"] > 0
    from dd_runner.models.inits import InitSampler
    from dd_runner.models import build_learner
    from dd_runner.core.device import Precision

    cpu = torch.device("cpu")
    learner = build_learner(cfg.model, load_data(cfg.dataset), cpu, Precision("fp32", cpu))
    sampler = InitSampler(cfg.init, learner, cfg.seed)
    seen = [t[0] for it in range(cfg.distill.iterations) for t in sampler.train_nets(it, 2)]
    for theta in sampler.eval_nets(3) + sampler.eval_nets(1, purpose="val"):
        assert all(not torch.equal(theta[0], s) for s in seen)


def test_train_mode_checkpoint_feeds_pretrained_init(mnist_overrides, tmp_path):
    trained = run(compose_cfg(mnist_overrides + TINY + ["mode=train", "train.epochs=1", f"output_dir={tmp_path / 'train'}"]))
    assert trained["test/acc"] > 0.8  # LeNet after one epoch on 7,200 real images
    assert trained["train/seconds"] > 0  # its wall time, for the tables of scripts/reproduce_*.py
    ckpt = tmp_path / "train" / "model.safetensors"
    metrics = run(compose_cfg(mnist_overrides + TINY + ["init=pretrained", f"init.checkpoint={ckpt}",
                                                        "distill.steps=1", "distill.epochs=1",
                                                        f"output_dir={tmp_path / 'distill'}"]))
    # theta_0 is the trained network: a tiny step on the distilled set keeps it far above chance
    assert metrics["test/acc_mean"] > 0.5 and metrics["test/n_nets"] == 1


def test_pretrained_init_reads_torch_state_dicts_safely(mnist_overrides, tmp_path):
    from dd_runner.core.errors import DataError
    from dd_runner.models.inits import read_state

    net = LeNet()
    torch.save(net.state_dict(), tmp_path / "lenet.pt")
    state = read_state(str(tmp_path / "lenet.pt"))
    assert set(state) == set(net.state_dict()) and torch.equal(state["fc3.bias"], net.fc3.bias)

    # anything but tensors and containers must not be unpickled
    torch.save({"evil": argparse.Namespace(run="arbitrary code")}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="cannot be loaded safely"):
        read_state(str(tmp_path / "evil.pt"))

"""The benchmark protocol: the set evaluated on other architectures (eval.models), DSA while evaluation
networks train (eval.augment), what a run costs (time per iteration, peak memory), and every results
table naming its protocol — through the real dd-run, dd-report and the pieces they stand on."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from dd_runner.config.validate import validate
from dd_runner.core.errors import ConfigError
from dd_runner.core.memory import PeakMemory
from dd_runner.eval.protocol import make_augment_each, make_schedule, resolve_protocol
from dd_runner.sweeps.report import report

from cli import FAST, dd_run
from conftest import compose_cfg, shared_data
from test_sweep import write_job


def test_a_set_is_evaluated_on_other_architectures_with_dsa_and_its_cost_is_recorded(tmp_path):
    """LeNet distils with a fixed init; eval.models adds MLP (random inits there, its own lr) and repeats
    LeNet's own figures; the baseline follows with eval.cross_baselines; DSA trains every evaluation net."""
    shared_data("mnist")
    out = tmp_path / "run"
    proc = dd_run(["dataset=mnist_offline", *FAST, "method=distribution_matching", "init=fixed", "distill.iterations=2",
                   "method.batch_real=32", "eval.models=[lenet,mlp]", "eval.augment=dsa", "eval.train_epochs=2",
                   "eval.lr_grid=[0.01,0.1]", "eval.tune_nets=1", "eval.baselines=[random_real]",
                   "eval.cross_baselines=true", f"output_dir={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["test/n_nets"] == 1 and m["test/mlp/n_nets"] == 2  # fixed theta_0 is LeNet's: MLP gets eval.nets inits
    assert m["test/lenet/acc_mean"] == m["test/acc_mean"] and m["test/mlp/lr"] in (0.01, 0.1)
    assert 0.0 <= m["test/mlp/acc_mean"] <= 1.0 and m["test/mlp/acc_std"] >= 0.0
    assert m["baselines/random_real/mlp/n_nets"] == 2 and "baselines/random_real/lenet/acc_mean" in m
    assert m["distill/seconds_per_iteration"] > 0 and m["distill/peak_memory_mb"] > 50 and m["eval/peak_memory_mb"] > 50
    assert "eval.augment=dsa" in m["eval/protocol"] and "2 epochs" in m["eval/protocol"]
    assert "lr tuned on validation" in m["eval/protocol"]  # a grid of two: tuned (one value would say "not tuned")
    saved = OmegaConf.load(out / "config.yaml")
    assert (saved.eval.augment, saved.eval.train_epochs) == ("dsa", 2)
    header = next(line for line in proc.stdout.splitlines() if "mlp" in line and "nets" in line)
    assert "lenet (distilled on)" in header
    row = next(line for line in proc.stdout.splitlines() if line.startswith("│ distilled"))
    assert row.count("±") == 2  # LeNet's column and MLP's
    words = " ".join(proc.stdout.split())  # the caption wraps at the table's width
    assert "init=fixed is lenet's: mlp start from random inits" in words and "eval.augment=dsa" in words
    assert "cost: distillation" in words and "peak RSS" in words


@pytest.mark.parametrize("overrides, epochs, augment", [
    (["method=distribution_matching", "augment=dsa"], 1000, "dsa"),  # the method's augment, the papers' epochs
    (["method=distribution_matching", "augment=dsa", "eval.augment=none"], 300, "none"),
    (["method=distribution_matching", "eval.augment=dsa", "eval.train_epochs=50"], 50, "dsa"),
    (["dataset=agnews_offline", "model=bert"], 300, "none"),
])
def test_the_protocol_defaults_follow_the_augmentation(overrides, epochs, augment):
    cfg = compose_cfg(overrides)
    resolve_protocol(cfg)
    resolve_protocol(cfg)  # idempotent
    assert (cfg.eval.train_epochs, cfg.eval.augment) == (epochs, augment)


def test_every_network_and_every_set_sees_the_same_augmentation_draws():
    """Per-example DSA transforms, drawn from the seed and the minibatch: the same for every network (so
    batched and looped evaluation agree) and for the set and the baselines (the same schedule code)."""
    cfg = compose_cfg(["eval.augment=dsa", "eval.schedule=train", "eval.train_epochs=2", "eval.train_batch=4"])
    resolve_protocol(cfg)
    augment = make_augment_each(cfg)
    same = torch.ones(6, 1, 28, 28)
    out = augment(same, 7)
    assert not torch.equal(out[0], out[1]) and torch.equal(out, augment(same, 7))  # per example, seeded
    x = torch.randn(1, 6, 1, 28, 28)
    y = F.one_hot(torch.arange(6) % 3, 3).float()[None]
    schedule = make_schedule(cfg.eval, 0, x, y, 1, lr=0.1, teacher=None, extras=None, augment=augment)
    first, second = [s.x for s in schedule], [s.x for s in schedule]
    assert len(first) == 4 and all(torch.equal(a, b) for a, b in zip(first, second))
    plain = [s.x for s in make_schedule(cfg.eval, 0, x, y, 1, lr=0.1, teacher=None, extras=None)]
    assert all(a.shape == b.shape and not torch.equal(a, b) for a, b in zip(first, plain))
    cfg.eval.schedule = "distilled"
    distilled = make_schedule(cfg.eval, 0, x, y, 2, lr=0.1, teacher=None, extras=None, augment=augment)
    steps = list(distilled)
    assert len(steps) == 2 and not torch.equal(steps[0].x, x[0]) and torch.equal(list(distilled)[1].x, steps[1].x)
    assert make_augment_each(compose_cfg(["eval.augment=none"])) is None


@pytest.mark.parametrize("overrides, message", [
    (["dataset=agnews_offline", "model=bert", "eval.models=[mlp]"], "no other network reads: leave eval.models empty"),
    (["eval.models=[resnet]"], "unknown eval.models entry 'resnet' (did you mean 'resnet18'?)"),
    (["eval.models=[distilbert]"], "eval.models entry distilbert is a text model"),
    (["eval.augment=flip"], "unknown eval.augment 'flip'"),
    (["dataset=agnews_offline", "model=bert", "eval.augment=dsa"], "eval.augment=dsa transforms images"),
])
def test_protocol_settings_that_cannot_work_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(overrides))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_peak_memory_sees_what_a_phase_allocated():
    memory = PeakMemory(torch.device("cpu"))
    memory.start()
    block = torch.ones(64, 2**20)  # 256 MB, touched
    peak = memory.peak_mb()
    del block
    assert 200 < peak < 2000 and memory.peak_total_mb() >= peak


def test_dd_report_shows_architectures_costs_and_the_protocol(tmp_path):
    def m(acc, mlp, seconds):
        return {"test/acc_mean": acc, "val/acc_mean": acc, "test/convnet/acc_mean": acc, "test/mlp/acc_mean": mlp,
                "baselines/random_real/acc_mean": 0.5, "baselines/random_real/mlp/acc_mean": 0.4,
                "distill/seconds_per_iteration": seconds, "distill/peak_memory_mb": 900.0,
                "eval/peak_memory_mb": 1200.0, "eval/protocol": "protocol: eval.schedule=train; eval.augment=dsa"}
    write_job(tmp_path, "0", ["distill.ipc=10", "seed=0"], m(0.9, 0.7, 1.0))
    write_job(tmp_path, "1", ["distill.ipc=10", "seed=1"], m(0.8, 0.5, 3.0))
    from rich.console import Console

    console = Console(width=300, record=True)
    report(tmp_path, console=console)
    text = console.export_text()
    assert "on mlp" in text and "on convnet" in text and "s / iteration" in text and "eval.augment=dsa" in text
    assert "60.00 ± 14.14" in text and "2" in text  # MLP column across seeds; mean 2 s per iteration
    row = next(r for r in open(tmp_path / "report.csv").read().splitlines()[1:])
    header = open(tmp_path / "report.csv").readline().strip().split(",")
    assert {"mlp_acc_mean", "random_real_mlp_acc_mean", "distill_seconds_per_iteration", "eval_peak_memory_mb"} <= set(header)
    assert dict(zip(header, row.split(",")))["mlp_acc_mean"] == "0.6"

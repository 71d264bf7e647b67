"""Batched networks under vmap: the vmap engines give the loop's meta-gradient, batched evaluation the
loop's accuracies, and models vmap cannot batch are refused (engines) or looped (evaluation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dd_runner.data import load_data
from dd_runner.data.bundle import Split
from dd_runner.core.device import Precision
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.core.errors import ConfigError
from dd_runner.eval.protocol import accuracies, batchable, batched_accuracies, looped_accuracies
from dd_runner.models.learner import Learner
from dd_runner.models.lenet import LeNet
from dd_runner.models.stacked import StackedNets, stack
from dd_runner.synthetic.set import SyntheticSet, fixed_steps

from conftest import MNIST_OFFLINE, compose_cfg
from helpers import CPU, tiny_learner, tiny_real_batch


def make_synth(label_type: str) -> SyntheticSet:
    torch.manual_seed(4)
    return SyntheticSet(3, 2, num_classes=3, ipc=2, example_shape=(6,), label_type=label_type, init_lr=0.3).double()


@pytest.mark.parametrize("label_type", ["hard", "soft", "unrestricted"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_vmap_engines_equal_the_loop(label_type, accumulate):
    """unroll == recompute == vmap == vmap_recompute in float64, over 5 nets in groups of every size."""
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth(label_type)
    thetas = [learner.draw(seed) for seed in range(5)]
    reference = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions(accumulate_loss=accumulate))
    for engine, chunk, every, real_chunk in [("recompute", 0, 0, 0), ("vmap", 0, 0, 0), ("vmap", 2, 0, 0),
                                             ("vmap_recompute", 0, 0, 0), ("vmap_recompute", 3, 2, 7)]:
        options = EngineOptions(accumulate_loss=accumulate, vmap_chunk=chunk, recompute_every=every,
                                real_chunk=real_chunk)
        meta = ENGINES.get(engine)(learner, thetas, synth, real, options)
        assert meta.loss == pytest.approx(reference.loss, rel=1e-12), (engine, chunk)
        for a, b in zip(reference.grads, meta.grads):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("engine", ["unroll", "recompute"])
def test_batched_real_loss_equals_the_net_by_net_one(engine):
    """The GPU path (one vmapped real-loss call for all nets) against the CPU path (net by net)."""
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth("soft")
    stacked = stack([learner.draw(seed) for seed in range(3)])
    options = EngineOptions(accumulate_loss=True)
    looped = ENGINES.get(engine)(StackedNets(learner, batch_real_loss=False), [stacked], synth, real, options)
    batched = ENGINES.get(engine)(StackedNets(learner, batch_real_loss=True), [stacked], synth, real, options)
    assert batched.loss == pytest.approx(looped.loss, rel=1e-12)
    for a, b in zip(looped.grads, batched.grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-13)


def dropout_learner() -> Learner:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Dropout(0.2), nn.Linear(5, 3)).double()
    return Learner(module, CPU, Precision("fp32", CPU), weight_init="xavier")


@pytest.mark.parametrize("engine", ["vmap", "vmap_recompute"])
def test_vmap_engines_refuse_models_with_dropout(engine):
    learner = dropout_learner()
    assert "dropout" in learner.vmap_blocker()
    with pytest.raises(ConfigError, match=rf"distill.engine={engine} cannot batch this model: .*dropout.*"
                                          r"use distill.engine=unroll or recompute"):
        ENGINES.get(engine)(learner, [learner.draw(0)], make_synth("hard"), tiny_real_batch(), EngineOptions())
    assert tiny_learner().vmap_blocker() is None


@pytest.fixture(scope="module")
def mnist_lenet64():
    """LeNet in float64 on real MNIST images: a 2-step x 2-epoch set of real examples and 300 test images."""
    cfg = compose_cfg(MNIST_OFFLINE)
    data = load_data(cfg.dataset, cfg.model)
    learner = Learner(LeNet().double(), CPU, Precision("fp32", CPU), weight_init="xavier")
    x = data.train.inputs[:20].double().view(2, 10, 1, 28, 28)
    targets = torch.nn.functional.one_hot(data.train.labels[:20], 10).double().view(2, 10, 10)
    steps = fixed_steps(x, targets, torch.tensor([0.05, 0.03, 0.02, 0.01], dtype=torch.float64), epochs=2)
    test = data.test.select(torch.arange(300))
    return learner, steps, Split(test.inputs.double(), test.labels)


def test_batched_evaluation_equals_the_loop(mnist_lenet64):
    learner, steps, test = mnist_lenet64
    thetas = [learner.draw(seed) for seed in range(7)]
    assert batchable(learner)  # LeNet takes the batched path by default
    looped = looped_accuracies(learner, thetas, steps, test, batch_size=64)
    # batch_size 40: groups of 4 nets (10 synthetic images per step) and 10 test images per net per pass
    for batch_size in (40, 60, 1024):  # groups of 4+3, 6+1 (the single net looped), all 7
        assert batched_accuracies(learner, thetas, steps, test, batch_size) == looped
    assert accuracies(learner, thetas, steps, test, 40) == looped
    assert len(set(looped)) > 1 and all(0.1 < a < 1 for a in looped)  # trained, and the nets differ


def test_evaluation_loops_over_models_vmap_cannot_batch():
    learner = dropout_learner()
    assert not batchable(learner)
    synth = make_synth("hard")
    test = tiny_real_batch(n=30, seed=9)
    thetas = [learner.draw(seed) for seed in range(3)]
    torch.manual_seed(11)
    default = accuracies(learner, thetas, synth.unrolled(), test, batch_size=8)
    torch.manual_seed(11)
    assert default == looped_accuracies(learner, thetas, synth.unrolled(), test, batch_size=8)


def test_convnet_evaluation_loops_on_a_cpu():
    """Under vmap ConvNet's convolutions become grouped ones, slower on a CPU than one net at a time: the
    ConvNet learner opts out there (LeNet, above, batches); the loop gives the same accuracies."""
    from types import SimpleNamespace

    from dd_runner.models.convnet import build_convnet

    data = SimpleNamespace(modality="image", example_shape=(1, 8, 8), num_classes=3)
    model_cfg = SimpleNamespace(width=4, depth=2, weight_init="xavier")
    learner = build_convnet(model_cfg, data, CPU, Precision("fp32", CPU))
    assert learner.vmap_blocker() is None and not batchable(learner)
    torch.manual_seed(2)
    x, targets = torch.randn(1, 6, 1, 8, 8), torch.eye(3).repeat(2, 1).view(1, 6, 3)
    steps = fixed_steps(x, targets, torch.full((3,), 0.1), epochs=3)
    test = Split(torch.randn(20, 1, 8, 8), torch.arange(20) % 3)
    thetas = [learner.draw(seed) for seed in range(3)]
    assert accuracies(learner, thetas, steps, test, 64) == looped_accuracies(learner, thetas, steps, test, 64)


def test_evaluate_reports_accuracy_and_mean_loss():
    learner, split = tiny_learner(), tiny_real_batch(n=25)
    theta = learner.draw(3)
    logits = torch.func.functional_call(learner.module, learner.as_dict(theta), (split.inputs,))
    metrics = learner.evaluate(theta, split, batch_size=7)
    assert metrics["acc"] == pytest.approx((logits.argmax(-1) == split.labels).double().mean().item())
    assert metrics["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, split.labels).item())

"""The meta-gradient: both engines against finite differences in float64, against each other, and
against the first-order approximation (which a silently broken graph would produce)."""

from __future__ import annotations

import pytest
import torch

from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.synthetic.set import SyntheticSet

from helpers import tiny_learner, tiny_real_batch

ENGINE_NAMES = ["unroll", "recompute", "vmap", "vmap_recompute"]


def make_synth(label_type: str, steps: int = 2, epochs: int = 2) -> SyntheticSet:
    torch.manual_seed(3)
    return SyntheticSet(steps, epochs, num_classes=3, ipc=1, example_shape=(6,), label_type=label_type,
                        init_lr=0.3).double()


def objective(engine, learner, thetas, synth, real, options) -> float:
    return ENGINES.get(engine)(learner, thetas, synth, real, options).loss


@pytest.mark.parametrize("engine", ENGINE_NAMES)
@pytest.mark.parametrize("label_type", ["hard", "soft", "unrestricted"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_meta_gradient_matches_finite_differences(engine, label_type, accumulate):
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth(label_type)
    thetas = [learner.draw(1), learner.draw(2)]
    options = EngineOptions(accumulate_loss=accumulate)
    meta = ENGINES.get(engine)(learner, thetas, synth, real, options)
    assert [g.shape for g in meta.grads] == [p.shape for p in synth.learnable()]
    eps = 1e-6
    for param, grad in zip(synth.learnable(), meta.grads):
        flat = param.data.view(-1)
        for i in {0, flat.numel() // 2, flat.numel() - 1}:
            old = flat[i].item()
            flat[i] = old + eps
            plus = objective(engine, learner, thetas, synth, real, options)
            flat[i] = old - eps
            minus = objective(engine, learner, thetas, synth, real, options)
            flat[i] = old
            numeric = (plus - minus) / (2 * eps)
            assert grad.view(-1)[i].item() == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("label_type", ["hard", "unrestricted"])
@pytest.mark.parametrize("recompute_every, real_chunk", [(0, 0), (2, 0), (3, 0), (0, 5), (2, 24)])
def test_recompute_equals_unroll(label_type, recompute_every, real_chunk):
    """Segments of k steps and the real loss in micro-batches (24 real examples in chunks of 5: 5+5+5+5+4)
    change the memory, not the gradient."""
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth(label_type, steps=3, epochs=2)
    thetas = [learner.draw(7)]
    for accumulate in (False, True):
        a = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions(accumulate_loss=accumulate))
        b = ENGINES.get("recompute")(learner, thetas, synth, real,
                                     EngineOptions(accumulate_loss=accumulate, recompute_every=recompute_every,
                                                   real_chunk=real_chunk))
        assert a.loss == pytest.approx(b.loss, rel=1e-12)
        for ga, gb in zip(a.grads, b.grads):
            torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_meta_gradient_is_second_order(engine):
    """Dropping the second-order terms (create_graph=False inside the unroll) changes the gradient of
    the data of the first step: the engines must not be first-order in disguise."""
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth("hard", steps=3, epochs=1)
    theta = learner.draw(5)
    # the same net twice: the average is its gradient, and the vmap engines really batch (2 nets)
    exact = ENGINES.get(engine)(learner, [theta, theta], synth, real, EngineOptions()).grads

    params = tuple(p.detach().requires_grad_() for p in theta)
    for t, step in enumerate(synth.unrolled()):
        loss = learner.inner_loss(params, step)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        # first-order: the next step sees the updated parameters as constants
        params = tuple((p - step.lr * g) if t == synth.num_steps - 1 else (p - step.lr * g).detach().requires_grad_()
                       for p, g in zip(params, grads))
    first_order = torch.autograd.grad(learner.real_loss(params, real), synth.learnable(), allow_unused=True)
    assert first_order[0] is not None
    assert not torch.allclose(exact[0][0], torch.zeros_like(exact[0][0]))
    # only the last step's data get a gradient in the first-order graph; the exact one reaches step 0
    assert torch.count_nonzero(first_order[0][0]) == 0
    assert (exact[0][0] - first_order[0][0]).abs().max() > 1e-6


def test_grads_average_over_nets():
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth("hard")
    thetas = [learner.draw(1), learner.draw(2)]
    both = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions())
    each = [ENGINES.get("unroll")(learner, [t], synth, real, EngineOptions()) for t in thetas]
    for i, g in enumerate(both.grads):
        torch.testing.assert_close(g, (each[0].grads[i] + each[1].grads[i]) / 2)
    assert both.loss == pytest.approx((each[0].loss + each[1].loss) / 2)


def test_loss_scale_scales_gradient_not_loss():
    learner, real = tiny_learner(), tiny_real_batch()
    synth = make_synth("soft")
    theta = [learner.draw(1)]
    for engine in ("unroll", "recompute"):
        plain = ENGINES.get(engine)(learner, theta, synth, real, EngineOptions())
        scaled = ENGINES.get(engine)(learner, theta, synth, real, EngineOptions(loss_scale=1024.0))
        assert scaled.loss == pytest.approx(plain.loss)
        for a, b in zip(plain.grads, scaled.grads):
            torch.testing.assert_close(a * 1024.0, b)

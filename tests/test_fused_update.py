"""The inner SGD update as multi-tensor operations (dd_runner/models/sgd.py): the same values and the same
meta-gradient as the per-parameter update it replaced (float64, every engine, an image net and both
transformer learners), and a number of operations that does not grow with the number of parameters."""

from __future__ import annotations

import sys

import pytest
import torch

from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.models.sgd import sgd_apply, sgd_update, signed_total
from dd_runner.synthetic.set import SyntheticSet

from conftest import REPO
from helpers import tiny_learner, tiny_real_batch

sys.path.insert(0, str(REPO / "scripts"))
from benchmark.ops import OpCounter  # noqa: E402


def per_parameter_meta_gradient(learner, thetas, synth, real, accumulate: bool):
    """The meta-gradient as the code computed it before the fused update: theta - lr * g one parameter at a
    time, autograd through every step, averaged over nets."""
    leaves = synth.learnable()
    total = [torch.zeros_like(x) for x in leaves]
    loss_sum = 0.0
    for theta0 in thetas:
        params = tuple(p.detach().requires_grad_() for p in theta0)
        objective = 0.0
        for t, step in enumerate(synth.unrolled()):
            grads = torch.autograd.grad(learner.inner_loss(params, step), params, create_graph=True)
            params = tuple(p - step.lr * g for p, g in zip(params, grads))
            if accumulate or t == synth.num_steps - 1:
                objective = objective + learner.real_loss(params, real)
        for acc, g in zip(total, torch.autograd.grad(objective, leaves, allow_unused=True)):
            acc.add_(torch.zeros_like(acc) if g is None else g)
        loss_sum += objective.item()
    return loss_sum / len(thetas), [g / len(thetas) for g in total]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("lr_grad", [True, False])
def test_sgd_apply_equals_the_per_parameter_update_and_its_derivative(lr_grad):
    gen = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (3,), (2, 2, 2), ()]
    params = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]
    grads = [torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True) for s in shapes]
    lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=lr_grad)
    outputs = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    fused = sgd_apply(params, grads, lr)
    plain = [p - lr * g for p, g in zip(params, grads)]
    assert all(torch.equal(a, b) for a, b in zip(fused, plain))  # the same operations, the same bits
    inputs = params + grads + ([lr] if lr_grad else [])
    got = torch.autograd.grad(fused, inputs, grad_outputs=outputs)
    want = torch.autograd.grad(plain, inputs, grad_outputs=outputs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)


def test_the_update_costs_the_same_operations_for_3_or_300_parameters():
    """Forward and backward a constant number of multi-tensor operations: the per-parameter update ran
    2 + ~5 per tensor."""
    counts = {}
    for n in (3, 300):
        params = [torch.randn(4, requires_grad=True) for _ in range(n)]
        grads = [torch.randn(4, requires_grad=True) for _ in range(n)]
        lr = torch.tensor(0.1, requires_grad=True)
        with OpCounter() as forward:
            new = sgd_apply(params, grads, lr)
        with OpCounter() as backward:
            torch.autograd.grad(new, params + grads + [lr], grad_outputs=[torch.ones(4)] * n)
        counts[n] = forward.total, backward.total
    assert counts[3][0] == counts[300][0] <= 2
    assert counts[3][1] == counts[300][1] <= 16


def test_signed_total_is_the_sum_of_every_element():
    gen = torch.Generator().manual_seed(3)
    tensors = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(7, 3), (5,), (), (2, 2, 2)]]
    want = sum(t.sum() for t in tensors)
    assert signed_total(tensors).item() == pytest.approx(want.item(), rel=1e-14)
    assert signed_total([torch.tensor([1.0, -3.0]), torch.tensor([float("nan")])]).isnan()


def test_momentum_and_weight_decay_follow_torch_optim_sgd():
    gen = torch.Generator().manual_seed(2)
    params = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
    reference = [p.clone().requires_grad_() for p in params]
    opt = torch.optim.SGD(reference, lr=0.05, momentum=0.9, weight_decay=0.01)
    buffers, current = None, tuple(params)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for r, g in zip(reference, grads):
            r.grad = g.clone()
        opt.step()
        with torch.no_grad():
            current, buffers = sgd_update(current, grads, torch.tensor(0.05), buffers, 0.9, 0.01)
    for a, b in zip(current, reference):
        torch.testing.assert_close(a, b.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("engine", ["unroll", "recompute", "vmap", "vmap_recompute"])
@pytest.mark.parametrize("label_type, accumulate", [("hard", False), ("soft", True), ("unrestricted", False)])
def test_meta_gradient_equals_the_per_parameter_update(engine, label_type, accumulate):
    learner, real = tiny_learner(), tiny_real_batch()
    torch.manual_seed(5)
    synth = SyntheticSet(3, 2, num_classes=3, ipc=2, example_shape=(6,), label_type=label_type, init_lr=0.3).double()
    thetas = [learner.draw(seed) for seed in range(3)]
    loss, reference = per_parameter_meta_gradient(learner, thetas, synth, real, accumulate)
    meta = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions(accumulate_loss=accumulate))
    assert meta.loss == pytest.approx(loss, rel=1e-12)
    for got, want in zip(meta.grads, reference):
        assert relative_error(got, want) < 1e-12, engine


@pytest.mark.parametrize("kind", ["classifier", "lm"])
def test_transformer_meta_gradient_equals_the_per_parameter_update(kind):
    from test_text_engines import real_tokens, tiny_classifier, tiny_lm

    learner = tiny_classifier() if kind == "classifier" else tiny_lm()
    real = real_tokens(classes=kind == "classifier")
    torch.manual_seed(6)
    if kind == "classifier":
        synth = SyntheticSet(2, 1, num_classes=3, ipc=1, example_shape=(5, 8), label_type="soft", init_lr=0.3)
    else:  # per-position next-token targets over the vocabulary
        targets = torch.nn.functional.one_hot(torch.randint(0, 40, (2, 1, 5)), 40)
        synth = SyntheticSet(2, 1, num_classes=1, ipc=1, example_shape=(5, 8), label_type="unrestricted",
                             init_lr=0.3, initial_targets=targets)
    synth = synth.double()
    thetas = [learner.draw(1)]
    for engine in ("unroll", "recompute"):
        loss, reference = per_parameter_meta_gradient(learner, thetas, synth, real, accumulate=False)
        meta = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions())
        assert meta.loss == pytest.approx(loss, rel=1e-12)
        for got, want in zip(meta.grads, reference):
            assert relative_error(got, want) < 1e-12, (kind, engine)

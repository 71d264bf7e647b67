"""Recompute engine: reverse-mode through the inner steps without keeping the unrolled graph.

Forward: run the T inner steps without a meta-graph, keeping only each step's parameters theta_t
(every k-th with `recompute_every=k`; the others are recomputed per segment). Reverse, from the last
step to the first: rebuild step t's graph from theta_t and the synthetic leaves, and take one
vector-Jacobian product of theta_{t+1} = theta_t - lr_t * grad l(x_t, theta_t) with the running
dL/dtheta_{t+1}. That yields dL/dtheta_t and step t's share of dL/d(data, lr, labels). Memory is about
(T/k + k) * |theta| plus one step's graph instead of T steps' graphs (the back-gradient idea of
Maclaurin et al. 2015 with exact stored parameters instead of reversed dynamics). The real loss's
graph, often the largest of all (a big real batch), is bounded too: `distill.real_chunk` examples at a
time.

Random state (dropout) of each step is saved in the forward pass and restored when a step is rebuilt,
so the gradient equals the unrolled one.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch

from dd_runner.engines.base import EngineOptions, MetaGradient, average, zeros_for_unused
from dd_runner.models.learner import Learner, Params


def _rng_state(device: torch.device):
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def real_loss_and_grad(learner: Learner, params: Params, real, options: EngineOptions) -> Tuple[torch.Tensor, List]:
    """The real loss at `params` and its gradient (times loss_scale), computed over micro-batches of
    `options.real_chunk` examples so that one micro-batch's graph is alive at a time: the loss is the
    weighted mean of the micro-batch losses, weighted by what each averages over."""
    w = tuple(p.detach().requires_grad_() for p in params)
    chunk = options.real_chunk if 0 < options.real_chunk < len(real) else len(real)
    parts = [real] if chunk == len(real) else list(real.batches(chunk))
    total = learner.real_loss_weight(real)
    loss_sum, grads = 0.0, None
    for part in parts:
        loss = learner.real_loss(w, part) * (learner.real_loss_weight(part) / total)
        part_grads = list(torch.autograd.grad(loss * options.loss_scale, w))
        if grads is None:
            grads = part_grads
        else:  # one multi-tensor addition per micro-batch, not one per parameter
            torch._foreach_add_(grads, part_grads)
        loss_sum = loss_sum + loss.detach()  # a device tensor: no sync per micro-batch
    return loss_sum, grads


def recompute(learner: Learner, thetas: Sequence[Params], synth, real, options: EngineOptions) -> MetaGradient:
    leaves = synth.learnable()
    total = [torch.zeros_like(x) for x in leaves]
    loss_sum = 0.0
    T = synth.num_steps
    k = max(1, options.recompute_every)
    with torch.no_grad():
        steps = [s.detached() for s in synth.unrolled()]

    for theta0 in thetas:
        # Forward: parameters at checkpoints 0, k, 2k, ... and the random state of every step.
        rng: List = []
        saved: Dict[int, Params] = {0: tuple(p.detach() for p in theta0)}
        params = saved[0]
        for t in range(T):
            rng.append(_rng_state(learner.device))
            params = learner.train_on_steps(params, [steps[t]])
            if (t + 1) % k == 0 or t + 1 == T:
                saved[t + 1] = params
        after_forward = _rng_state(learner.device)

        # dL/dtheta_T from the real loss at the end.
        objective, dw = real_loss_and_grad(learner, saved[T], real, options)

        segment: Dict[int, Params] = {}
        for t in reversed(range(T)):
            theta_t = saved.get(t) or segment.get(t)
            if theta_t is None:  # rebuild the segment [start, t] from its checkpoint, once per segment
                start = (t // k) * k
                segment = {start: saved[start]}
                for u in range(start, t):
                    _set_rng_state(rng[u], learner.device)
                    segment[u + 1] = learner.train_on_steps(segment[u], [steps[u]])
                theta_t = segment[t]
            _set_rng_state(rng[t], learner.device)
            w = tuple(p.detach().requires_grad_() for p in theta_t)
            new = learner.sgd_step(w, synth.step(t), create_graph=True)
            grads = torch.autograd.grad(new, (*w, *leaves), grad_outputs=dw, allow_unused=True)
            grads = zeros_for_unused(grads, (*w, *leaves))
            dw = list(grads[: len(w)])
            for acc, g in zip(total, grads[len(w):]):
                acc.add_(g)
            if options.accumulate_loss and t > 0:  # the real loss after step t contributes at theta_t
                loss_t, grads_t = real_loss_and_grad(learner, theta_t, real, options)
                torch._foreach_add_(dw, grads_t)
                objective += loss_t
            del new, grads
        _set_rng_state(after_forward, learner.device)
        loss_sum += objective
    return average(total, loss_sum, len(thetas))

"""Plain unrolling: autograd through every inner step (create_graph=True), then one backward.

Memory grows with the number of steps (the whole unrolled graph is alive at once); it is the reference
the other engines are tested against.
"""

from __future__ import annotations

from typing import Sequence

import torch

from dd_runner.engines.base import EngineOptions, MetaGradient, average, zeros_for_unused
from dd_runner.models.learner import Learner, Params


def unroll(learner: Learner, thetas: Sequence[Params], synth, real, options: EngineOptions) -> MetaGradient:
    leaves = synth.learnable()
    total = [torch.zeros_like(x) for x in leaves]
    loss_sum = 0.0
    last = synth.num_steps - 1
    for theta0 in thetas:
        params = tuple(p.detach().requires_grad_() for p in theta0)
        objective = 0.0
        for t, step in enumerate(synth.unrolled()):
            params = learner.sgd_step(params, step, create_graph=True)
            if options.accumulate_loss or t == last:
                objective = objective + learner.real_loss(params, real)
        grads = torch.autograd.grad(objective * options.loss_scale, leaves, allow_unused=True)
        for acc, g in zip(total, zeros_for_unused(grads, leaves)):
            acc.add_(g)
        loss_sum = loss_sum + objective.detach()  # stays on the device: no sync per net
    return average(total, loss_sum, len(thetas))

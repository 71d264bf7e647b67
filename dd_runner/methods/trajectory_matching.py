"""Trajectory matching (Cazenavette et al., CVPR 2022, "MTT").

A student starts from an expert's parameters at a random epoch s, takes steps x epochs SGD steps on the
synthetic set with a learned step size, and should land where the expert was M epochs later:

    loss = ||theta_student - theta_expert(s + M)||^2 / ||theta_expert(s) - theta_expert(s + M)||^2

The gradient flows back through the student's unrolled steps to the synthetic data and the step size.
Experts come from `dd-run mode=experts` (method.experts points at their folder).
"""

from __future__ import annotations

import torch

from dd_runner.context import Distilled, RunContext
from dd_runner.core.seeding import generator
from dd_runner.engines import MetaGradient
from dd_runner.engines.base import zeros_for_unused
from dd_runner.methods.experts import ExpertPool
from dd_runner.methods.loop import optimise
from dd_runner.synthetic.build import make_synthetic


def trajectory_matching(ctx: RunContext) -> Distilled:
    cfg, m, learner = ctx.cfg, ctx.cfg.method, ctx.learner
    synth = make_synthetic(cfg, ctx.data, learner, cfg.seed)
    experts = ExpertPool(m.experts, learner, needed_epoch=m.max_start_epoch - 1 + m.expert_epochs)

    def match(iteration: int, loss_scale: float) -> MetaGradient:
        g = generator(cfg.seed, "trajectory", iteration)
        expert = int(torch.randint(len(experts), (), generator=g))
        start = int(torch.randint(m.max_start_epoch, (), generator=g))
        theta_start, target = experts.params(expert, start), experts.params(expert, start + m.expert_epochs)
        params = tuple(p.clone().requires_grad_() for p in theta_start)
        for step in synth.unrolled():
            params = learner.sgd_step(params, step, create_graph=True)
        travelled = sum(((p - t) ** 2).sum() for p, t in zip(params, target))
        span = sum(((s - t) ** 2).sum() for s, t in zip(theta_start, target))
        loss = travelled / span
        leaves = synth.learnable()
        grads = torch.autograd.grad(loss * loss_scale, leaves, allow_unused=True)
        return MetaGradient(objective=loss.detach(), grads=zeros_for_unused(grads, leaves))

    return optimise(ctx, synth, match)

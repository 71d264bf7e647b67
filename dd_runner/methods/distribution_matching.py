"""Distribution matching (Zhao & Bilen, WACV 2023, "DM").

Every iteration draws a fresh network from p(theta) and uses it, untrained and frozen, as a feature
extractor; class by class, the mean feature of a real batch and the mean feature of the synthetic
examples are pulled together (squared distance). No bi-level optimisation: one forward pass per batch,
which makes DM the cheapest family, at some cost in accuracy on small budgets.
"""

from __future__ import annotations

import torch

from dd_runner.context import Distilled, RunContext
from dd_runner.data.augment import make_augment
from dd_runner.data.stream import ClassBatches
from dd_runner.engines import MetaGradient
from dd_runner.engines.base import zeros_for_unused
from dd_runner.methods.loop import optimise
from dd_runner.methods.matching import class_pair
from dd_runner.synthetic.build import make_synthetic


def distribution_matching(ctx: RunContext) -> Distilled:
    cfg, m, learner = ctx.cfg, ctx.cfg.method, ctx.learner
    synth = make_synthetic(cfg, ctx.data, learner, cfg.seed)
    batches = ClassBatches(ctx.data.train, synth.num_classes, m.batch_real, cfg.seed, ctx.device)
    augment = make_augment(cfg.augment)

    def match(iteration: int, loss_scale: float) -> MetaGradient:
        named = learner.as_dict(tuple(p.detach() for p in ctx.inits.train_nets(iteration, 1)[0]))
        learner.module.train()
        loss = synth.data.new_zeros(())
        for c in range(synth.num_classes):
            real, x_syn, _ = class_pair(synth, batches, c, augment, cfg.seed, iteration)
            with ctx.precision.autocast():
                with torch.no_grad():
                    mean_real = learner.real_features(named, real).float().mean(0)
                mean_syn = learner.synthetic_features(named, x_syn).float().mean(0)
            loss = loss + ((mean_real - mean_syn) ** 2).sum()
        leaves = synth.learnable()
        grads = torch.autograd.grad(loss * loss_scale, leaves, allow_unused=True)
        return MetaGradient(objective=loss.detach(), grads=zeros_for_unused(grads, leaves))

    return optimise(ctx, synth, match, state={"batches": batches})

"""Gradient matching (Zhao, Mopuri & Bilen, ICLR 2021, "DC"; with augment=dsa, "DSA").

For a sampled network, class by class, the gradient of the loss on a real batch and the gradient of the
loss on that class's synthetic examples w.r.t. the network's parameters are compared layer by layer; the
synthetic examples move to shrink the distance. Every `method.outer_loop` synthetic updates a new network
is drawn; between them the network trains `method.inner_loop` epochs on the synthetic set, so the
matching follows a training trajectory.
"""

from __future__ import annotations

from typing import Sequence

import torch

from dd_runner.context import Distilled, RunContext
from dd_runner.core.seeding import derive_seed, generator
from dd_runner.data.augment import make_augment
from dd_runner.data.stream import ClassBatches
from dd_runner.engines import MetaGradient
from dd_runner.engines.base import zeros_for_unused
from dd_runner.methods.loop import optimise
from dd_runner.methods.matching import CarriedNet, class_pair
from dd_runner.models.learner import Step
from dd_runner.synthetic.build import make_synthetic
from dd_runner.synthetic.set import with_teacher


def layerwise_distance(syn: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """DC's distance: per layer and output unit, 1 - cosine of the two gradients, summed. Conv weights
    are (out, in * k * k) rows, linear weights (out, in); biases and norm parameters are left out."""
    total = syn[0].new_zeros(())
    for gs, gr in zip(syn, real):
        if gs.dim() == 1:
            continue
        gs, gr = gs.flatten(1), gr.flatten(1)
        total = total + (1 - (gs * gr).sum(-1) / (gs.norm(dim=-1) * gr.norm(dim=-1) + 1e-6)).sum()
    return total


def mse_distance(syn, real) -> torch.Tensor:
    return sum(((gs - gr) ** 2).sum() for gs, gr in zip(syn, real))


DISTANCES = {"layerwise": layerwise_distance, "mse": mse_distance}


def gradient_matching(ctx: RunContext) -> Distilled:
    cfg, m, learner = ctx.cfg, ctx.cfg.method, ctx.learner
    synth = make_synthetic(cfg, ctx.data, learner, cfg.seed)
    batches = ClassBatches(ctx.data.train, synth.num_classes, m.batch_real, cfg.seed, ctx.device)
    augment = make_augment(cfg.augment)
    distance = DISTANCES[m.distance]
    net = CarriedNet()

    def train_net(params, iteration: int):
        """inner_loop epochs of SGD (method.lr_net) on the current synthetic set, as DC does."""
        x_all, y_all = (t.detach() for t in synth.class_examples_all())
        lr = torch.tensor(m.lr_net, device=x_all.device, dtype=x_all.dtype)
        gen = generator(cfg.seed, "gm-net-training", iteration)
        for epoch in range(m.inner_loop):
            order = torch.randperm(len(x_all), generator=gen).to(x_all.device)
            for start in range(0, len(order), m.batch_real):
                idx = order[start:start + m.batch_real]
                x = x_all[idx] if augment is None else augment(x_all[idx], derive_seed(cfg.seed, "gm-aug", iteration, epoch, start))
                params = learner.train_on_steps(params, [with_teacher(Step(x, y_all[idx], lr), synth.teacher)])
        return params

    def match(iteration: int, loss_scale: float) -> MetaGradient:
        k, ol = divmod(iteration, m.outer_loop)
        net.params = ctx.inits.train_nets(k, 1)[0] if ol == 0 or net.params is None else train_net(net.params, iteration)
        theta = tuple(p.detach().requires_grad_() for p in net.params)
        loss = theta[0].new_zeros(())
        for c in range(synth.num_classes):
            real, x_syn, y_syn = class_pair(synth, batches, c, augment, cfg.seed, iteration)
            g_real = torch.autograd.grad(learner.real_loss(theta, real, train_mode=True), theta)
            syn_loss = learner.inner_loss(theta, with_teacher(Step(x_syn, y_syn, None), synth.teacher))
            g_syn = torch.autograd.grad(syn_loss, theta, create_graph=True)
            loss = loss + distance(g_syn, [g.detach() for g in g_real])
        leaves = synth.learnable()
        grads = torch.autograd.grad(loss * loss_scale, leaves, allow_unused=True)
        return MetaGradient(objective=loss.detach(), grads=zeros_for_unused(grads, leaves))

    return optimise(ctx, synth, match, state={"batches": batches, "net": net})

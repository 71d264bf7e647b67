"""Batched engines: the `distill.sample_nets` networks of an outer step unrolled together under vmap.

`vmap` is `unroll` and `vmap_recompute` is `recompute`, each run on a stack of networks
(`models/stacked.StackedNets`) instead of one network at a time: every inner step is one batched call
for all nets of a group, which removes the per-net loop's small kernels and Python overhead (most of
the time on a GPU). Groups of `distill.vmap_chunk` nets bound memory: `vmap` keeps the unrolled graphs
of a whole group alive, `vmap_recompute` only the parameters of every step of every net in the group.
The gradient is the average over nets, the same as the loop's (tests check this in float64).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from dd_runner.engines.base import EngineOptions, MetaGradient, average
from dd_runner.engines.recompute import recompute
from dd_runner.engines.unroll import unroll
from dd_runner.models.learner import Learner, Params
from dd_runner.models.stacked import StackedNets, groups, require_vmap, stack


def _over_groups(engine: Callable, name: str, learner: Learner, thetas: Sequence[Params], synth, real,
                 options: EngineOptions) -> MetaGradient:
    require_vmap(learner, f"distill.engine={name}")
    nets = StackedNets(learner)
    total = [torch.zeros_like(x) for x in synth.learnable()]
    loss_sum = 0.0
    for group in groups(thetas, options.vmap_chunk):
        if len(group) == 1:  # nothing to batch: the plain engine, without vmap's overhead
            summed = engine(learner, group, synth, real, options)
        else:
            summed = engine(nets, [stack(group)], synth, real, options)  # losses summed over the group
        for acc, g in zip(total, summed.grads):
            acc.add_(g)
        loss_sum = loss_sum + summed.objective  # a device tensor: no sync per group (a captured step has none)
    return average(total, loss_sum, len(thetas))


def vmap_unroll(learner: Learner, thetas: Sequence[Params], synth, real, options: EngineOptions) -> MetaGradient:
    return _over_groups(unroll, "vmap", learner, thetas, synth, real, options)


def vmap_recompute(learner: Learner, thetas: Sequence[Params], synth, real, options: EngineOptions) -> MetaGradient:
    return _over_groups(recompute, "vmap_recompute", learner, thetas, synth, real, options)

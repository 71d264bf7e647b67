"""An engine's meta-gradient over several processes (torchrun): net j of an outer step is differentiated
on rank j % K, and the sums are all-reduced so that every rank takes the same outer step.
Without torchrun it is the engine itself."""

from __future__ import annotations

import functools
import logging
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from dd_runner.core import distributed
from dd_runner.engines.base import MetaGradient

log = logging.getLogger(__name__)


def meta_gradient(engine: Callable, learner, thetas: Sequence, synth, real, options):
    """The engine's meta-gradient averaged over all `thetas`, each rank differentiating its share.

    Engines return the mean over the nets they were given; it is turned back into a sum, summed over
    ranks in one all-reduce (gradients and loss in one flat buffer) and divided by len(thetas). A rank
    with no net (fewer nets than ranks) contributes zeros."""
    if distributed.world_size() == 1:
        return engine(learner, thetas, synth, real, options)
    if len(thetas) % distributed.world_size():
        _warn_uneven(len(thetas), distributed.world_size())
    mine = distributed.shard(thetas)
    leaves = synth.learnable()
    if mine:
        meta = engine(learner, mine, synth, real, options)
        sums = [g * len(mine) for g in meta.grads]
        loss = torch.as_tensor(meta.objective, dtype=sums[0].dtype, device=sums[0].device) * len(mine)
    else:
        sums = [torch.zeros_like(x) for x in leaves]
        loss = sums[0].new_zeros(())
    flat = torch.cat([g.reshape(-1) for g in sums] + [loss.reshape(1)])
    dist.all_reduce(flat)
    flat /= len(thetas)
    grads = [g.view_as(x) for g, x in zip(flat[:-1].split([x.numel() for x in leaves]), leaves)]
    return MetaGradient(objective=flat[-1], grads=grads)


@functools.lru_cache(maxsize=None)
def _warn_uneven(nets: int, world: int) -> None:
    log.warning("%d nets per outer step over %d processes: some processes wait for the others; use a multiple "
                "of %d for distill.sample_nets (fixed init, or pretrained without init.resample, has one net)",
                nets, world, world)

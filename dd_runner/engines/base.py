"""Types shared by the engines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch


@dataclass
class EngineOptions:
    accumulate_loss: bool = False  # objective = sum of the real loss after every inner step
    loss_scale: float = 1.0  # fp16: the GradScaler's scale, applied to the outer loss only
    recompute_every: int = 0  # recompute engine: keep every k-th step's parameters (0 or 1: all)
    vmap_chunk: int = 0  # vmap engines: nets unrolled together (0: all sampled nets at once)
    real_chunk: int = 0  # recompute engines: real examples per forward of the real loss (0: whole batch)

    @classmethod
    def from_config(cls, distill_cfg, loss_scale: float = 1.0) -> "EngineOptions":
        d = distill_cfg
        return cls(accumulate_loss=d.accumulate_loss, loss_scale=loss_scale,
                   recompute_every=d.recompute_every, vmap_chunk=d.vmap_chunk,
                   real_chunk=d.real_chunk)


@dataclass
class MetaGradient:
    loss: float  # the objective, averaged over nets (unscaled)
    grads: List[torch.Tensor]  # averaged over nets, aligned with synth.learnable(); scaled by loss_scale


def zeros_for_unused(grads: Sequence[Optional[torch.Tensor]], like: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def average(total: List[torch.Tensor], loss_sum: float, count: int) -> MetaGradient:
    return MetaGradient(loss=loss_sum / count, grads=[g / count for g in total])

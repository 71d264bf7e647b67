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


@dataclass
class MetaGradient:
    loss: float  # the objective, averaged over nets (unscaled)
    grads: List[torch.Tensor]  # averaged over nets, aligned with synth.learnable(); scaled by loss_scale


def zeros_for_unused(grads: Sequence[Optional[torch.Tensor]], like: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def average(total: List[torch.Tensor], loss_sum: float, count: int) -> MetaGradient:
    return MetaGradient(loss=loss_sum / count, grads=[g / count for g in total])

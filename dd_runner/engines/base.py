"""Types shared by the engines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

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
    # The objective averaged over nets (unscaled), a detached 0-d tensor on the device: engines never read
    # it back while they run (no host-device sync per net or per inner step); `loss` does, once.
    objective: Union[torch.Tensor, float]
    grads: List[torch.Tensor]  # averaged over nets, aligned with synth.learnable(); scaled by loss_scale

    @property
    def loss(self) -> float:
        """The objective as a Python float: one host-device sync (the outer loop reads it once per step)."""
        return float(self.objective)


def zeros_for_unused(grads: Sequence[Optional[torch.Tensor]], like: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def average(total: List[torch.Tensor], loss_sum, count: int) -> MetaGradient:
    """The mean over `count` nets of summed gradients and a summed objective (a tensor: not read back)."""
    return MetaGradient(objective=loss_sum / count, grads=[g / count for g in total])

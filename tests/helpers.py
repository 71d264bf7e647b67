"""Small real pieces for unit tests: a float64 two-layer net seen through the real Learner."""

from __future__ import annotations

import torch
from torch import nn

from dd_runner.data.bundle import Split
from dd_runner.core.device import Precision
from dd_runner.models.learner import Learner

CPU = torch.device("cpu")


def tiny_learner(in_features: int = 6, hidden: int = 5, classes: int = 3, dtype=torch.float64) -> Learner:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, classes)).to(dtype)
    return Learner(module, CPU, Precision("fp32", CPU), weight_init="xavier")


def tiny_real_batch(n: int = 24, in_features: int = 6, classes: int = 3, seed: int = 1) -> Split:
    gen = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, in_features, generator=gen, dtype=torch.float64),
                 torch.randint(0, classes, (n,), generator=gen))

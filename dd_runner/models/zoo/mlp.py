"""MLP of DC / DSA / DM's cross-architecture tables: the image flattened, two hidden layers of 128 ReLU
units, a linear classifier (3 linear layers in all)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.models.zoo.common import build_image_learner


class MLP(nn.Module):
    def __init__(self, example_shape, num_classes: int, hidden: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(math.prod(example_shape), hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        h = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return h if return_features else self.fc3(h)


def build_mlp(model_cfg, data, device, precision, distill_cfg=None):
    # small dense layers: batching nets under vmap pays on a CPU too
    return build_image_learner("mlp", model_cfg, data, device, precision,
                               lambda shape, classes: MLP(shape, classes, model_cfg.width), vmap_pays_on_cpu=True)

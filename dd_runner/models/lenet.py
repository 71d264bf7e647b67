"""LeNet-5 (LeCun et al. 1998) as used by Wang et al. 2018 for MNIST."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.models.learner import Learner


class LeNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        # 28x28 inputs are padded to LeNet's native 32x32 receptive field, as in the original code.
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2 if image_size == 28 else 0)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((image_size + (4 if image_size == 28 else 0) - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))  # the penultimate features (distribution matching, coresets)
        return x if return_features else self.fc3(x)


def build_lenet(model_cfg, data, device, precision, distill_cfg=None) -> Learner:
    if data.modality != "image":
        from dd_runner.core.errors import ConfigError

        raise ConfigError(f"model=lenet needs an image dataset, not dataset={data.name}; use a text model")
    channels, height, width = data.example_shape
    module = LeNet(channels, data.num_classes, height)
    return Learner(module, device, precision, weight_init=model_cfg.weight_init)

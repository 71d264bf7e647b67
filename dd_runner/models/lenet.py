"""LeNet-5 (LeCun et al. 1998) as Wang et al. 2018 and DC's cross-architecture tables use it: conv 5x5 (6)
-> ReLU -> 2x2 max pool -> conv 5x5 (16) -> ReLU -> 2x2 max pool -> fc 120 -> fc 84 -> fc classes.

28x28 inputs are padded by 2 in the first convolution, reaching LeNet's native 32x32 receptive field (as
both codes do for MNIST), so 1x28x28 and 3x32x32 both end on 16 x 5 x 5 = 400 features: 61,706 and
62,006 parameters for 10 classes, DC's counts. fc1 is sized from a forward pass, so other sizes build too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.core.errors import ConfigError
from dd_runner.models.learner import Learner


class LeNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=28):
        super().__init__()
        height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2 if height == 28 else 0)
        self.conv2 = nn.Conv2d(6, 16, 5)
        with torch.no_grad():
            try:
                features = self._convolutions(torch.zeros(1, in_channels, height, width)).shape[1]
            except RuntimeError:  # the map shrinks below a kernel
                raise ConfigError(f"model=lenet needs images of at least 16x16 pixels, not {height}x{width}") from None
        self.fc1 = nn.Linear(features, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def _convolutions(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return x.flatten(1)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.relu(self.fc1(self._convolutions(x)))
        x = F.relu(self.fc2(x))  # the penultimate features (distribution matching, coresets)
        return x if return_features else self.fc3(x)


def build_lenet(model_cfg, data, device, precision, distill_cfg=None) -> Learner:
    if data.modality != "image":
        raise ConfigError(f"model=lenet needs an image dataset, not dataset={data.name}; use a text model")
    channels, height, width = data.example_shape
    module = LeNet(channels, data.num_classes, (height, width))
    return Learner(module, device, precision, weight_init=model_cfg.weight_init)

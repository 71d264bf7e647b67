"""ConvNet-3: the network gradient matching (DC), distribution matching (DM) and trajectory matching (MTT)
report with — depth x [conv 3x3, 128 channels -> instance norm -> ReLU -> 2x2 average pooling], then a
linear classifier — so figures are comparable to the literature."""

from __future__ import annotations

import torch
from torch import nn

from dd_runner.core.errors import ConfigError
from dd_runner.models.learner import Learner


class ConvNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 128, depth: int = 3):
        super().__init__()
        layers, channels, side = [], in_channels, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1),
                       nn.GroupNorm(width, width, affine=True),  # instance norm with affine, as the papers
                       nn.ReLU(inplace=False),
                       nn.AvgPool2d(2)]
            channels, side = width, side // 2
        if side < 1:
            raise ConfigError(f"model.depth={depth} pools {image_size}px images to nothing; use a smaller depth")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * side * side, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        h = self.features(x).flatten(1)
        return h if return_features else self.classifier(h)


def build_convnet(model_cfg, data, device, precision, distill_cfg=None) -> Learner:
    if data.modality != "image":
        raise ConfigError(f"model=convnet needs an image dataset, not dataset={data.name}")
    channels, height, _ = data.example_shape
    module = ConvNet(channels, data.num_classes, height, width=model_cfg.width, depth=model_cfg.depth)
    learner = Learner(module, device, precision, weight_init=model_cfg.weight_init)
    learner.vmap_pays_on_cpu = False  # 128-channel grouped convolutions: the loop is 2.5x faster on a CPU
    return learner

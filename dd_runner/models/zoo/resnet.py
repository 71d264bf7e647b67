"""ResNet-18 as DC / DSA / DM / MTT use it on small images: a 3x3 stem of 64 channels (stride 1, no max
pooling), four stages of two basic blocks (64, 128, 256, 512 channels; stride 2 from the second stage on,
1x1 projection shortcuts where the shape changes), bias-free convolutions each followed by instance norm
(the papers' ResNet18) or batch norm (their ResNet18BN, `model.norm=batch`), 4x4 average pooling and a
linear classifier. 1x28x28 and 3x32x32 inputs both end on 512 features, as in DC's code; the classifier is
sized from a forward pass, so larger images build too (3x64x64: 2x2 x 512 features)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner, norm_layer


class BasicBlock(nn.Module):
    def __init__(self, previous: int, width: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(previous, width, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm_layer(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2 = norm_layer(norm, width)
        self.shortcut = nn.Sequential()
        if stride != 1 or previous != width:
            self.shortcut = nn.Sequential(nn.Conv2d(previous, width, 1, stride=stride, bias=False), norm_layer(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


class ResNet(FeaturesThenLinear):
    def __init__(self, example_shape, num_classes: int, norm: str = "instance", blocks=(2, 2, 2, 2)):
        stem = [nn.Conv2d(example_shape[0], 64, 3, padding=1, bias=False), norm_layer(norm, 64), nn.ReLU()]
        stages, previous = [], 64
        for i, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            for j in range(count):
                stages.append(BasicBlock(previous, width, 2 if i > 0 and j == 0 else 1, norm))
                previous = width
        super().__init__(nn.Sequential(*stem, *stages, nn.AvgPool2d(4)), example_shape, num_classes)


def build_resnet18(model_cfg, data, device, precision, distill_cfg=None):
    return build_image_learner("resnet18", model_cfg, data, device, precision,
                               lambda shape, classes: ResNet(shape, classes, model_cfg.norm or "instance"))

"""ConvNet: the network gradient matching (DC), distribution matching (DM) and trajectory matching (MTT)
report with, as Zhao et al.'s code builds it — depth x [conv 3x3 (width channels) -> norm -> ReLU -> 2x2
average pooling], then a linear classifier on the flattened map.

Like theirs, the first convolution pads by 3 for 1-channel images and by 1 otherwise, so 28x28 MNIST reaches
the 32x32 map of CIFAR (4x4 after three poolings: 2,048 features, 317,706 parameters at width 128, depth 3,
10 classes). The classifier is sized from a forward pass, so any image size builds as long as `depth`
poolings leave at least one pixel (e.g. 3x64x64 with model.depth=4, DC's ConvNetD4). model.norm: instance
(their default: GroupNorm with a group per channel), batch (ConvNetBN) or none (ConvNetNN).
"""

from __future__ import annotations

from torch import nn

from dd_runner.core.errors import ConfigError
from dd_runner.models.learner import Learner
from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner, norm_layer


def first_padding(channels: int) -> int:
    """DC pads the first convolution by 3 for 1-channel inputs, by 1 for colour ones."""
    return 3 if channels == 1 else 1


class ConvNet(FeaturesThenLinear):
    def __init__(self, example_shape, num_classes: int, width: int = 128, depth: int = 3, norm: str = "instance"):
        channels, height, side_w = example_shape
        pad = first_padding(channels)
        side = min(height, side_w) + 2 * pad - 2  # the first convolution's output; later ones keep the size
        for _ in range(depth):
            side //= 2
        if side < 1:
            raise ConfigError(f"model.depth={depth} pools {height}x{side_w} images to nothing; use a smaller model.depth")
        layers, previous = [], channels
        for d in range(depth):
            layers += [nn.Conv2d(previous, width, 3, padding=pad if d == 0 else 1),
                       norm_layer(norm, width),
                       nn.ReLU(inplace=False),
                       nn.AvgPool2d(2)]
            previous = width
        super().__init__(nn.Sequential(*layers), example_shape, num_classes)


def build_convnet(model_cfg, data, device, precision, distill_cfg=None) -> Learner:
    norm = getattr(model_cfg, "norm", None) or "instance"
    # (vmap_pays_on_cpu stays False: 128-channel grouped convolutions under vmap run 2.5x slower on a CPU)
    return build_image_learner("convnet", model_cfg, data, device, precision,
                               lambda shape, classes: ConvNet(shape, classes, model_cfg.width, model_cfg.depth, norm))

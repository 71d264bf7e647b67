"""AlexNet as DC / DSA / DM / MTT size it for 28x28 and 32x32 images: five convolutions (128-192-256-192-192
channels, 5x5 then 3x3) with ReLU, three 2x2 max-poolings, a linear classifier on the 4x4 map. 28x28 inputs
get 2 more pixels of padding in the first convolution, so both sizes reach the same map. The papers' AlexNet
has no normalisation (model.norm=none); instance or batch norm after each convolution are options."""

from __future__ import annotations

from torch import nn

from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner, norm_layer


class AlexNet(FeaturesThenLinear):
    def __init__(self, example_shape, num_classes: int, norm: str = "none"):
        channels, height = example_shape[0], example_shape[1]
        layers, previous = [], channels
        plan = [(128, 5, 4 if height == 28 else 2, True), (192, 5, 2, True), (256, 3, 1, False),
                (192, 3, 1, False), (192, 3, 1, True)]  # (channels, kernel, padding, pool after)
        for width, kernel, padding, pool in plan:
            layers += [nn.Conv2d(previous, width, kernel, padding=padding), norm_layer(norm, width), nn.ReLU()]
            layers += [nn.MaxPool2d(2)] if pool else []
            previous = width
        super().__init__(nn.Sequential(*layers), example_shape, num_classes)


def build_alexnet(model_cfg, data, device, precision, distill_cfg=None):
    return build_image_learner("alexnet", model_cfg, data, device, precision,
                               lambda shape, classes: AlexNet(shape, classes, model_cfg.norm or "none"))

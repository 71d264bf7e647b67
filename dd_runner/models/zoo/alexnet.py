"""AlexNet as DC / DSA / DM / MTT size it: five convolutions (128-192-256-192-192 channels, 5x5 then 3x3)
with ReLU, three 2x2 max-poolings, a linear classifier on the final map. As in DC's code, the first
convolution pads by 4 for 1-channel images and by 2 for colour ones, so 1x28x28 and 3x32x32 both reach a
4x4 map (3,072 features); the classifier is sized from a forward pass, so other sizes build too. The
papers' AlexNet has no normalisation (model.norm=none); instance or batch norm after each convolution are
options."""

from __future__ import annotations

from torch import nn

from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner, norm_layer


class AlexNet(FeaturesThenLinear):
    def __init__(self, example_shape, num_classes: int, norm: str = "none"):
        channels = example_shape[0]
        layers, previous = [], channels
        plan = [(128, 5, 4 if channels == 1 else 2, True), (192, 5, 2, True), (256, 3, 1, False),
                (192, 3, 1, False), (192, 3, 1, True)]  # (channels, kernel, padding, pool after)
        for width, kernel, padding, pool in plan:
            layers += [nn.Conv2d(previous, width, kernel, padding=padding), norm_layer(norm, width), nn.ReLU()]
            layers += [nn.MaxPool2d(2)] if pool else []
            previous = width
        super().__init__(nn.Sequential(*layers), example_shape, num_classes)


def build_alexnet(model_cfg, data, device, precision, distill_cfg=None):
    return build_image_learner("alexnet", model_cfg, data, device, precision,
                               lambda shape, classes: AlexNet(shape, classes, model_cfg.norm or "none"))

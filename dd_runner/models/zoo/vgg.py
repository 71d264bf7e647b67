"""VGG-11 as DC / DSA / DM / MTT use it: eight 3x3 convolutions (64, M, 128, M, 256, 256, M, 512, 512, M,
512, 512, M), each followed by instance norm (the papers' default; model.norm=batch is their VGG11BN) and
ReLU, then a linear classifier. As in DC's code the first convolution pads by 3 for 1-channel images (by 1
otherwise), so 1x28x28 and 3x32x32 both end on a 1x1 map of 512 features; the classifier is sized from a
forward pass, so other sizes build too."""

from __future__ import annotations

from torch import nn

from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner, norm_layer

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(FeaturesThenLinear):
    def __init__(self, example_shape, num_classes: int, norm: str = "instance", plan=VGG11):
        channels, layers = example_shape[0], []
        previous = channels
        for i, width in enumerate(plan):
            if width == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            padding = 3 if i == 0 and channels == 1 else 1
            layers += [nn.Conv2d(previous, width, 3, padding=padding), norm_layer(norm, width), nn.ReLU()]
            previous = width
        super().__init__(nn.Sequential(*layers), example_shape, num_classes)


def build_vgg11(model_cfg, data, device, precision, distill_cfg=None):
    return build_image_learner("vgg11", model_cfg, data, device, precision,
                               lambda shape, classes: VGG(shape, classes, model_cfg.norm or "instance"))

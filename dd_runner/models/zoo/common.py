"""What the benchmark architectures share: their normalisation layer (`model.norm`), a learner for networks
with batch norm, and the builder that turns a module into a Learner.

Batch norm keeps running statistics as module state, outside the parameter tuples the inner loop trains, so
`BatchNormLearner` gives every evaluation network its own: they are reset before each network trains, and
test accuracy uses the statistics that network gathered (as DC's evaluation does, train mode then eval mode).
Features for distribution matching and the coresets come from batch statistics, which hold no trace of
whichever network trained last.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch
from torch import nn
from torch.func import functional_call

from dd_runner.core.errors import ConfigError
from dd_runner.models.learner import Learner, Params, Step

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """instance: GroupNorm with a group per channel and an affine map (the papers' 'instancenorm', which
    unlike nn.InstanceNorm2d keeps no running statistics); batch: BatchNorm2d; none: identity."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown model.norm '{kind}'; valid: {', '.join(NORMS)}")


def feature_size(features: nn.Module, example_shape: Sequence[int]) -> int:
    """Flattened size of `features` on one example: the classifier fits any image size the layers accept."""
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            size = features(torch.zeros(1, *example_shape)).flatten(1).shape[1]
    except (RuntimeError, ValueError):  # a pooling or kernel larger than what is left of the image, or a
        # norm over a 1x1 map (instance norm of a single value: VGG-11 on 3x28x28)
        raise ConfigError(f"images of shape {tuple(example_shape)} are too small for this network's convolutions and "
                          "poolings: use larger images (dataset.image_shape) or another model") from None
    features.train(was_training)
    return size


class FeaturesThenLinear(nn.Module):
    """A feature extractor, flattened, then a linear classifier sized for the example shape; the flattened
    features are the penultimate ones (distribution matching, coresets)."""

    def __init__(self, features: nn.Module, example_shape: Sequence[int], num_classes: int):
        super().__init__()
        self.features = features
        self.classifier = nn.Linear(feature_size(features, example_shape), num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        h = self.features(x).flatten(1)
        return h if return_features else self.classifier(h)


def _batch_norms(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class BatchNormLearner(Learner):
    """A Learner whose network has batch norm: per-network running statistics in evaluation."""

    def reset_statistics(self) -> None:
        for m in _batch_norms(self.module):
            m.reset_running_stats()

    def train_on_steps(self, params: Params, steps: Sequence[Step], momentum: float = 0.0,
                       weight_decay: float = 0.0) -> Params:
        self.reset_statistics()  # this network's statistics only, whatever trained before it
        return super().train_on_steps(params, steps, momentum, weight_decay)

    def _batch_statistics_features(self, params: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        norms = _batch_norms(self.module)
        was_training, saved = self.module.training, [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
        self.module.train()
        for m in norms:
            m.momentum = 0.0  # batch statistics without touching the running ones
        try:
            return functional_call(self.module, params, (x,), {"return_features": True})
        finally:
            for m, (momentum, tracked) in zip(norms, saved):
                m.momentum = momentum
                m.num_batches_tracked.copy_(tracked)
            self.module.train(was_training)

    def synthetic_features(self, params, x):
        return self._batch_statistics_features(params, x)

    def real_features(self, params, batch):
        return self._batch_statistics_features(params, batch.inputs)


def build_image_learner(name: str, model_cfg, data, device, precision, make: Callable[[tuple, int], nn.Module],
                        vmap_pays_on_cpu: bool = False) -> Learner:
    """A Learner around make(example_shape, num_classes), for image datasets only."""
    if data.modality != "image":
        raise ConfigError(f"model={name} needs an image dataset, not dataset={data.name}; use a text model")
    module = make(tuple(data.example_shape), data.num_classes)
    kind = BatchNormLearner if _batch_norms(module) else Learner
    learner = kind(module, device, precision, weight_init=model_cfg.weight_init)
    learner.vmap_pays_on_cpu = vmap_pays_on_cpu  # wide convolutions: one net at a time is faster on a CPU
    return learner

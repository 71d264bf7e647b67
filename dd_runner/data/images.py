"""What every image loader shares once its images are decoded: the checks of labels against
`dataset.num_classes` and of the image shape, the normalisation (mean / std given, or measured on the
training split; or ZCA whitening) and the DataBundle.

A loader hands over, per role (train / val / test), uint8 images (N, C, H, W), int64 labels and a phrase
naming where they came from (a file, a column), so a bad label is reported with its origin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from dd_runner.core.errors import ConfigError, DataError
from dd_runner.data import zca
from dd_runner.data.bundle import DataBundle, Split
from dd_runner.data.splits import ROLES

log = logging.getLogger(__name__)


@dataclass
class RawImages:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    origin: str  # where the labels come from, for messages: "column 'label' of cifar10", "<path>"


def resolve_num_classes(cfg, parts: Dict[str, RawImages], known: Optional[int] = None) -> int:
    """dataset.num_classes, else what the data declares (`known`: a ClassLabel's size), else one more than
    the largest label. Every label must lie in [0, num_classes): a label beyond it is refused naming its
    origin, never left to fail as an IndexError mid-distillation."""
    num_classes = cfg.num_classes or known or 1 + max(int(p.labels.max()) for p in parts.values() if len(p.labels))
    for role, part in parts.items():
        if not len(part.labels):
            continue
        low, high = int(part.labels.min()), int(part.labels.max())
        if low < 0:
            raise DataError(f"{part.origin} holds the label {low} in dataset.{role}_split: labels are class ids "
                            "from 0 (check dataset.label_column, or dataset.label_offset)")
        if high >= num_classes:
            setting = (f"dataset.num_classes={num_classes}" if cfg.num_classes
                       else f"the {num_classes} classes the data declares")
            raise DataError(f"{part.origin} holds the label {high} in dataset.{role}_split but {setting} allow "
                            f"0..{num_classes - 1}: set dataset.num_classes={high + 1} or check the labels")
    return int(num_classes)


def resolve_class_names(cfg, num_classes: int, found: Sequence[str] = ()) -> List[str]:
    """dataset.class_names, else the names the data carries (a ClassLabel, folder names, torchvision's
    `classes`), else the label numbers."""
    names = list(cfg.class_names) or list(found)
    if names and len(names) != num_classes:
        where = "dataset.class_names" if cfg.class_names else "the data's class names"
        raise ConfigError(f"{where} has {len(names)} names but there are {num_classes} classes: give one name "
                          "per class, in label order")
    return [str(n) for n in names] or [str(c) for c in range(num_classes)]


def check_shape(cfg, shape: Sequence[int], origin: str) -> None:
    """The decoded images have dataset.image_shape (loaders that cannot resize, e.g. idx files)."""
    if cfg.image_shape and tuple(cfg.image_shape) != tuple(shape):
        raise DataError(f"the images of {origin} have shape {tuple(shape)} but dataset.image_shape="
                        f"{list(cfg.image_shape)}: fix dataset.image_shape (or leave it empty)")


def channel_statistics(images: torch.Tensor) -> tuple:
    """Per-channel mean and (population) standard deviation of uint8 images scaled to [0, 1], exact: from
    each channel's histogram of the 256 pixel values."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = (counts * values).sum() / total
        means.append(float(mean))
        stds.append(float(((counts * (values - mean) ** 2).sum() / total).sqrt()))
    return means, stds


def _per_channel(cfg, key: str, channels: int) -> List[float]:
    values = list(getattr(cfg, key))
    if values and len(values) != channels:
        raise ConfigError(f"dataset.{key} has {len(values)} entries but the images have {channels} channel(s): "
                          f"give one per channel, or leave it empty to measure it on dataset.train_split")
    return [float(v) for v in values]


def image_bundle(cfg, parts: Dict[str, RawImages], source: str, found_names: Sequence[str] = (),
                 known_classes: Optional[int] = None) -> DataBundle:
    """The DataBundle of decoded images: checked labels and shape, then normalised — (x - mean) / std with
    x in [0, 1] (mean / std from the config, or measured on the training split), or ZCA-whitened."""
    num_classes = resolve_num_classes(cfg, parts, known_classes)
    names = resolve_class_names(cfg, num_classes, found_names)
    train = parts["train"].images
    shape = tuple(train.shape[1:])
    check_shape(cfg, shape, source)
    channels = shape[0]
    if cfg.get("zca", False):  # .get: configs recorded before the option existed lack the key
        eps = float(cfg.get("zca_eps", 0.1))
        fitted = zca.fit(train.float() / 255.0, eps)
        normalisation = {"mean": [0.0] * channels, "std": [1.0] * channels,
                         "zca": {"eps": eps, "fitted_on": "dataset.train_split"}}
        convert = lambda u8: zca.whiten(u8.float() / 255.0, fitted)  # noqa: E731
    else:
        fitted = {}
        mean, std = _per_channel(cfg, "mean", channels), _per_channel(cfg, "std", channels)
        if not mean or not std:
            measured = channel_statistics(train)
            mean, std = mean or measured[0], std or measured[1]
            log.info("%s: mean %s, std %s measured on dataset.train_split", cfg.name,
                     [round(m, 4) for m in mean], [round(s, 4) for s in std])
        if min(std) <= 0:
            raise DataError(f"the training images of {source} are constant in a channel (std 0): they cannot be "
                            "normalised; give dataset.std, or check the images")
        m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
        normalisation = {"mean": mean, "std": std}
        convert = lambda u8: (u8.float() / 255.0 - m) / s  # noqa: E731
    splits = {role: Split(inputs=convert(parts[role].images), labels=parts[role].labels.long()) for role in ROLES}
    log.info("%s from %s: train %d, val %d, test %d, images %s", cfg.name, source,
             *(len(splits[r]) for r in ROLES), "x".join(map(str, shape)))
    return DataBundle(name=cfg.name, task=cfg.task, modality="image", num_classes=num_classes, class_names=names,
                      example_shape=shape, normalisation=normalisation, whitening=fitted, source=source, **splits)

"""Decoding images into one uint8 tensor (N, C, H, W), every image checked and named when it is bad.

What an image becomes is decided once per dataset (`Target`): with `dataset.image_shape: [C, H, W]` every
image is converted to PIL mode L (C=1) or RGB (C=3) and resized to H x W with PIL's bilinear filter
(antialiased when shrinking); without it, the first training image decides — grey modes (1, L, LA) give one
channel, every other mode RGB — and all images must have its size. 16-bit and floating-point images
(modes I;16, I, F) are refused: converting them to 8 bits means choosing a scaling, which PIL does not (it
clips), so the user converts them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from dd_runner.core.errors import ConfigError, DataError

MODES = {1: "L", 3: "RGB"}  # channels -> PIL mode
GREY = ("1", "L", "LA")
DEEP = ("I", "F")  # I;16, I;16B, ... start with "I"


@dataclass(frozen=True)
class Target:
    mode: str  # "L" or "RGB"
    height: int
    width: int
    resize: bool  # dataset.image_shape asked for this size (else images must already have it)

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3


def configured_target(image_shape: Sequence[int]) -> Optional[Target]:
    """The target of `dataset.image_shape` ([] -> None: the first image decides)."""
    if not image_shape:
        return None
    if len(image_shape) != 3 or int(image_shape[0]) not in MODES:
        raise ConfigError(f"dataset.image_shape={list(image_shape)} must be [channels, height, width] with 1 "
                          "(grey) or 3 (RGB) channels")
    return Target(MODES[int(image_shape[0])], int(image_shape[1]), int(image_shape[2]), resize=True)


def _open(source: Union[bytes, str, Path, "PIL.Image.Image"]):
    from PIL import Image

    if isinstance(source, Image.Image):
        return source
    return Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source))


def _fail(where: str, e: Exception) -> DataError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    return DataError(f"cannot read the image {where} ({type(e).__name__}: {reason}): replace or remove it, or "
                     "point dataset.root / dataset.data_files elsewhere")


def decode_one(source, where: str, target: Optional[Target]) -> Tuple[np.ndarray, Target]:
    """One image as an (H, W, C) uint8 array, and the target it was decoded to (the first image's when
    `target` is None)."""
    from PIL import Image

    try:
        img = _open(source)
        img.load()  # decode now: a truncated file fails here, not later
        if img.mode.startswith(DEEP):
            raise DataError(f"the image {where} has {img.mode} pixels (16-bit or floating point), which dd-run does "
                            "not scale to 8 bits: save it as an 8-bit PNG (mode L or RGB)")
        if target is None:
            target = Target("L" if img.mode in GREY else "RGB", img.height, img.width, resize=False)
        if img.mode != target.mode:
            img = img.convert(target.mode)
        if (img.height, img.width) != (target.height, target.width):
            if not target.resize:
                raise DataError(f"the image {where} is {img.height}x{img.width} pixels but the first training image "
                                f"is {target.height}x{target.width}: set dataset.image_shape=[{target.channels},"
                                f"{target.height},{target.width}] to resize every image to one size")
            img = img.resize((target.width, target.height), Image.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, TypeError) as e:  # PIL's decode errors
        raise _fail(where, e) from None
    return (array[:, :, None] if array.ndim == 2 else array), target


def decode_all(items: Iterable[Tuple[object, str]], count: int, target: Optional[Target],
               origin: str) -> Tuple[torch.Tensor, Target]:
    """`count` (image, where) pairs as one (count, C, H, W) uint8 tensor, decoded once."""
    out = None
    for i, (source, where) in enumerate(items):
        array, target = decode_one(source, where, target)
        if out is None:
            out = np.empty((count, *array.shape), dtype=np.uint8)
        out[i] = array
    if out is None:
        raise DataError(f"{origin} selects no images")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), target


def conform(images: torch.Tensor, target: Optional[Target], origin: str) -> Tuple[torch.Tensor, Target]:
    """uint8 (N, C, H, W) arrays (torchvision's) brought to `target` through the same PIL conversion as
    decoded files; unchanged when they already match it (or no target is set yet)."""
    if images.dim() != 4 or images.shape[1] not in MODES:
        raise DataError(f"{origin} holds arrays of shape {tuple(images.shape[1:])}, not grey or RGB images")
    own = Target(MODES[images.shape[1]], images.shape[2], images.shape[3], resize=False)
    if target is None or (target.mode, target.height, target.width) == (own.mode, own.height, own.width):
        return images, target or own
    from PIL import Image

    arrays = images.permute(0, 2, 3, 1).numpy()
    pictures = ((Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a), f"{i} of {origin}") for i, a in enumerate(arrays))
    return decode_all(pictures, len(arrays), target, origin)

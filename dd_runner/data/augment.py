"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021) for image distillation.

The same random transform — one of scale, rotate, crop (translation), cutout, flip, colour — is applied to
the real and the synthetic batch of a matching step (Siamese: one seed, one parameter draw for every
image of both batches). Every transform is differentiable in the pixels (affine grids, masks, affine
colour maps), so the synthetic images receive gradients through it. `augment=dsa` turns it on for the
methods that match real and synthetic batches (gradient and distribution matching).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from dd_runner.core.errors import ConfigError


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x).expand(x.shape[0], 2, 3), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def scale(x, g, cfg):
    sx, sy = (torch.rand(2, generator=g) * (cfg.scale - 1.0 / cfg.scale) + 1.0 / cfg.scale).tolist()
    return _affine(x, torch.tensor([[sx, 0.0, 0.0], [0.0, sy, 0.0]]))


def rotate(x, g, cfg):
    angle = (torch.rand((), generator=g).item() - 0.5) * 2 * cfg.rotate / 180 * math.pi
    c, s = math.cos(angle), math.sin(angle)
    return _affine(x, torch.tensor([[c, s, 0.0], [-s, c, 0.0]]))


def crop(x, g, cfg):
    """Translation by up to crop x size pixels, zero padding (DSA's random crop after padding)."""
    tx, ty = ((torch.rand(2, generator=g) - 0.5) * 4 * cfg.crop).tolist()  # normalised coordinates span 2
    return _affine(x, torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty]]))


def cutout(x, g, cfg):
    h, w = x.shape[-2:]
    ch, cw = max(1, int(h * cfg.cutout / 2)), max(1, int(w * cfg.cutout / 2))  # half-size of the hole
    cy, cx = int(torch.randint(h, (), generator=g)), int(torch.randint(w, (), generator=g))
    mask = torch.ones(h, w, device=x.device, dtype=x.dtype)
    mask[max(0, cy - ch):cy + ch, max(0, cx - cw):cx + cw] = 0
    return x * mask


def flip(x, g, cfg):
    return x.flip(-1) if torch.rand((), generator=g).item() < 0.5 else x


def color(x, g, cfg):
    brightness, saturation, contrast = torch.rand(3, generator=g).tolist()
    x = x + (brightness - 0.5) * cfg.brightness
    if x.shape[1] > 1:  # saturation means nothing for grey images
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (saturation * cfg.saturation) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (contrast + cfg.contrast) + mean


TRANSFORMS: Dict[str, Callable] = {"scale": scale, "rotate": rotate, "crop": crop, "cutout": cutout,
                                   "flip": flip, "color": color}


class SiameseAugment:
    """`augment(x, seed)`: one transform of the strategy, drawn from `seed`; the same seed gives the same
    transform to the real and the synthetic batch."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.ops: List[str] = [op for op in cfg.strategy.split("_") if op]
        unknown = [op for op in self.ops if op not in TRANSFORMS]
        if unknown:
            raise ConfigError(f"augment.strategy: unknown transform(s) {unknown}; valid: {'_'.join(TRANSFORMS)}")

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed))
        op = self.ops[int(torch.randint(len(self.ops), (), generator=g))]
        return TRANSFORMS[op](x, g, self.cfg)


def make_augment(cfg):
    """The augmentation of `augment=` (None for augment=none)."""
    return SiameseAugment(cfg) if cfg.name == "dsa" else None

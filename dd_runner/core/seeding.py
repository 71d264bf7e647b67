"""Explicit, recorded seeds. Every random draw of a run derives from `cfg.seed` and a purpose tag.

Deriving per-purpose seeds (instead of consuming one global stream) keeps draws independent of each
other: adding a validation pass does not change which networks the distillation samples, the networks
of iteration i are the same after a resume, and evaluation networks never coincide with training ones.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, *tags) -> int:
    digest = hashlib.blake2b(repr((int(seed),) + tags).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generator(seed: int, *tags) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *tags))


def seed_everything(seed: int) -> None:
    """Seed the global streams (dropout in the inner loop, library code) from the run's seed."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)

"""Minibatches of real training data for the outer loop (Algorithm 1, line 3).

Shuffled epochs with a per-epoch seed derived from the run's seed, so the stream's position is just
(epoch, offset): cheap to checkpoint and exact to resume.
"""

from __future__ import annotations

from dd_runner.data.bundle import Split
from dd_runner.seeding import generator

import torch


class RealBatches:
    def __init__(self, split: Split, batch_size: int, seed: int, device: torch.device):
        self.split, self.seed, self.device = split, seed, device
        self.batch_size = min(batch_size, len(split))
        self.epoch, self.offset = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self.split), generator=generator(self.seed, "real-batches", epoch))

    def next(self) -> Split:
        if self.offset + self.batch_size > len(self.split):  # drop the ragged tail: equal-size batches
            self.epoch, self.offset = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        idx = self._order[self.offset:self.offset + self.batch_size]
        self.offset += self.batch_size
        return self.split.select(idx).to(self.device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._order = self._permutation(self.epoch)

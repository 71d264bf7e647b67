"""Pieces the matching methods share: the network a method carries between iterations, and per-class
real / synthetic batches with the same Siamese augmentation applied to both."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Tuple

import torch

from dd_runner.core.seeding import derive_seed
from dd_runner.data.bundle import Split


class CarriedNet:
    """A network's parameters that live across outer iterations (checkpointed with the run)."""

    def __init__(self):
        self.params: Optional[Tuple[torch.Tensor, ...]] = None

    def state_dict(self) -> dict:
        return {"params": list(self.params) if self.params is not None else []}

    def load_state_dict(self, state: dict) -> None:
        self.params = tuple(state["params"]) if state["params"] else None


def class_pair(synth, batches, c: int, augment, seed: int, iteration: int) -> Tuple[Split, torch.Tensor, torch.Tensor]:
    """(real batch of class c, synthetic inputs of class c, their targets), both augmented alike."""
    real = batches.next(c)
    x_syn, y_syn = synth.class_examples(c)
    if augment is not None:
        s = derive_seed(seed, "augment", iteration, c)
        real = replace(real, inputs=augment(real.inputs, s))
        x_syn = augment(x_syn, s)
    return real, x_syn, y_syn

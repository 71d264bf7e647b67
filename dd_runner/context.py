"""What a run hands to its method and to the evaluation: the resolved pieces, built once in run()."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_runner.data.bundle import DataBundle
from dd_runner.device import Precision
from dd_runner.inits import InitSampler
from dd_runner.models.learner import Learner


@dataclass
class RunContext:
    cfg: Any  # the composed DictConfig
    out: Path  # run directory
    device: torch.device
    precision: Precision
    data: DataBundle
    learner: Learner
    inits: InitSampler
    tracker: Any  # dd_runner.tracking.Tracker


@dataclass
class Distilled:
    """What a method returns: the synthetic set kept (by validation) and how it got there."""

    synth: Any  # SyntheticSet
    iterations: int
    seconds: float
    final_loss: float
    best_iteration: int
    best_val_acc: float

"""What a run hands to its method and to the evaluation: the resolved pieces, built once in run(), and what a
method returns. It sits at the package root because methods/ and eval/ both use it and it uses only layers
below them (core, data, models)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import torch

from dd_runner.core.device import Precision
from dd_runner.data.bundle import DataBundle
from dd_runner.models.inits import InitSampler
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
    tracker: Any  # dd_runner.runtime.tracking.Tracker
    checkpoints: Any = None  # dd_runner.runtime.checkpoint.Checkpointer
    resuming: bool = False  # an explicit resume=DIR (may continue with changed settings)
    snapshots: Any = None  # dd_runner.runtime.snapshots.Snapshots: the set at every validation point (or None)
    eval_models: Dict[str, Any] = field(default_factory=dict)  # eval.models: option -> its model config


class LoopStats:
    """Wall time and last loss of an optimisation loop, carried across resumes (checkpointed)."""

    def __init__(self):
        self.seconds, self.loss = 0.0, float("nan")
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        return self.seconds + time.perf_counter() - self._start

    def state_dict(self) -> dict:
        return {"seconds": self.elapsed(), "loss": self.loss}

    def load_state_dict(self, state: dict) -> None:
        self.seconds, self.loss, self._start = float(state["seconds"]), float(state["loss"]), time.perf_counter()


@dataclass
class Distilled:
    """What a method returns: the synthetic set kept (by validation) and how it got there."""

    synth: Any  # SyntheticSet
    iterations: int
    seconds: float
    final_loss: float
    kept_iteration: int  # the iteration whose set is evaluated (eval.select=best: the best on validation)
    metrics: Dict[str, float] = field(default_factory=dict)  # method-specific figures for metrics.json

"""How a distilled set (or a baseline) is judged: train fresh networks on it and measure them on a
held-out split — every method and every baseline by the same schedule.

Schedules (`eval.schedule`):
- distilled: exactly as distilled — steps x epochs GD steps in the set's order with its learned lrs
  (Wang et al.'s protocol); a set without learned lrs gets one fixed lr tuned on validation;
- train: `eval.train_epochs` epochs of minibatch SGD with momentum and weight decay over the set's
  examples, lr tuned on validation and divided by 10 halfway (the DC / DM / MTT protocol).

Fixed init evaluates its one theta_0; random / pretrained init evaluate `eval.nets` initialisations never
seen in distillation, reported as mean +- std. The validation split serves model selection (which set
to keep, which lr); the test split only the reported figures.
"""

from __future__ import annotations

import statistics
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from dd_runner.data.bundle import Split
from dd_runner.models.learner import Learner, Params, Step
from dd_runner.seeding import generator
from dd_runner.synthetic import fixed_steps


class Schedule:
    """A step sequence (iterated afresh for every network) and the optimiser details it is trained with."""

    def __init__(self, steps, momentum: float = 0.0, weight_decay: float = 0.0):
        self._steps, self.momentum, self.weight_decay = steps, momentum, weight_decay

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps() if callable(self._steps) else self._steps)


def accuracies(learner: Learner, thetas: Sequence[Params], steps, split: Split, batch_size: int) -> List[float]:
    """Test accuracy of each network after training on `steps` (a Schedule or a list of steps)."""
    schedule = steps if isinstance(steps, Schedule) else Schedule(list(steps))
    return [learner.evaluate(learner.train_on_steps(theta, schedule, schedule.momentum,
                                                    schedule.weight_decay), split, batch_size)["acc"]
            for theta in thetas]


def summary(accs: Sequence[float]) -> Dict[str, float]:
    return {
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "n_nets": len(accs),
    }


def make_schedule(eval_cfg, seed: int, x: torch.Tensor, targets: torch.Tensor, epochs: int,
                  lrs: Optional[torch.Tensor] = None, lr: Optional[float] = None, teacher=None) -> Schedule:
    """The evaluation schedule for a set laid out as (steps, examples, ...): with `lrs` (learned, one per
    unrolled step) under schedule=distilled, else with the fixed `lr`."""
    if eval_cfg.schedule == "distilled":
        if lrs is None:
            lrs = torch.full((x.shape[0] * epochs,), float(lr), device=x.device, dtype=x.dtype)
        return Schedule(fixed_steps(x, targets, lrs, epochs, teacher))
    xs, ys = x.flatten(0, 1).detach(), targets.flatten(0, 1).detach()
    extras = teacher.extras(xs) if teacher is not None else {}  # the teacher labels each example once

    def steps() -> Iterator[Step]:
        gen = generator(seed, "eval-train-schedule")  # the same minibatch order for every network
        for epoch in range(eval_cfg.train_epochs):
            decay = 0.1 if epoch >= eval_cfg.train_epochs // 2 else 1.0
            step_lr = torch.tensor(float(lr) * decay, device=x.device, dtype=x.dtype)
            order = torch.randperm(len(xs), generator=gen).to(xs.device)
            for start in range(0, len(order), eval_cfg.train_batch):
                idx = order[start:start + eval_cfg.train_batch]
                yield Step(xs[idx], ys[idx], step_lr, {k: v[idx] if v.dim() else v for k, v in extras.items()})

    return Schedule(steps, eval_cfg.train_momentum, eval_cfg.train_weight_decay)

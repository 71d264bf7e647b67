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

Networks are trained and tested together under vmap (`batched_accuracies`) whenever the model allows it
(`Learner.vmap_blocker`) and, on a CPU, batching pays for it (`Learner.vmap_pays_on_cpu`); otherwise one
at a time (`looped_accuracies`). Both give the same figures up
to floating-point rounding (identical in float64; in fp32 the batched kernels sum in another order,
and training can amplify that into a few test examples of one net).
"""

from __future__ import annotations

import statistics
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch

from dd_runner.core.distributed import gather, shard
from dd_runner.core.seeding import derive_seed
from dd_runner.data.bundle import Split
from dd_runner.models.learner import Learner, Params, Step
from dd_runner.models.stacked import StackedNets, groups, stack
from dd_runner.synthetic.set import fixed_steps, minibatch_steps


class Schedule:
    """A step sequence (iterated afresh for every network) and the optimiser details it is trained with."""

    def __init__(self, steps, momentum: float = 0.0, weight_decay: float = 0.0):
        self._steps, self.momentum, self.weight_decay = steps, momentum, weight_decay

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps() if callable(self._steps) else self._steps)


def as_schedule(steps) -> Schedule:
    """A Schedule from a Schedule or a plain list of steps (plain SGD)."""
    return steps if isinstance(steps, Schedule) else Schedule([s.detached() for s in steps])


def scores(learner: Learner, thetas: Sequence[Params], steps, split: Split, batch_size: int) -> List[Dict[str, float]]:
    """The metrics (`Learner.evaluate`: acc, loss; language models also ppl) of each network after
    training on `steps` (a Schedule or a list of steps). Under torchrun each rank trains its share of the
    networks and every rank gets all the metrics, in order."""
    schedule = as_schedule(steps)
    evaluate = batched_scores if batchable(learner) else looped_scores
    return gather(evaluate(learner, shard(thetas), schedule, split, batch_size), len(thetas))


def accuracies(learner: Learner, thetas: Sequence[Params], steps, split: Split, batch_size: int) -> List[float]:
    """Test accuracy of each network after training on `steps` (a Schedule or a list of steps)."""
    return [m["acc"] for m in scores(learner, thetas, steps, split, batch_size)]


def batchable(learner: Learner) -> bool:
    """Whether evaluation batches this learner's networks: vmap must work on it, its metrics must come
    from the vmap-safe `batch_stats` / `metrics_from` pair (a learner that replaces `evaluate` wholesale
    is measured its own way, one network at a time), and on a CPU batching must pay for this model."""
    if learner.device.type == "cpu" and not learner.vmap_pays_on_cpu:
        return False
    return learner.vmap_blocker() is None and type(learner).evaluate is Learner.evaluate


def looped_scores(learner: Learner, thetas: Sequence[Params], steps, split: Split,
                  batch_size: int) -> List[Dict[str, float]]:
    schedule = as_schedule(steps)
    return [learner.evaluate(learner.train_on_steps(theta, schedule, schedule.momentum, schedule.weight_decay),
                             split, batch_size) for theta in thetas]


def batched_scores(learner: Learner, thetas: Sequence[Params], steps, split: Split,
                   batch_size: int) -> List[Dict[str, float]]:
    """All nets at once, in groups small enough that one inner step of a group holds at most
    `batch_size` synthetic examples, and test passes of `batch_size` examples over the whole group:
    memory is bounded by `batch_size` as in the loop, plus the stacked parameters of a group."""
    schedule = as_schedule(steps)
    nets = StackedNets(learner)
    first = next(iter(schedule), None)
    per_group = max(1, batch_size // max(1, len(first.x))) if first is not None else len(thetas)
    split = split.to(learner.device)  # once, not once per (small) batch of every group
    out: List[Dict[str, float]] = []
    for group in groups(thetas, per_group):
        if len(group) == 1:  # nothing to batch: skip vmap's overhead
            out += looped_scores(learner, group, schedule, split, batch_size)
            continue
        trained = nets.train_on_steps(stack(group), schedule, schedule.momentum, schedule.weight_decay)
        out += nets.evaluate(trained, split, batch_size)
    return out


def looped_accuracies(learner, thetas, steps, split, batch_size) -> List[float]:
    return [m["acc"] for m in looped_scores(learner, thetas, steps, split, batch_size)]


def batched_accuracies(learner, thetas, steps, split, batch_size) -> List[float]:
    return [m["acc"] for m in batched_scores(learner, thetas, steps, split, batch_size)]


def summary(values: Sequence, keys: Sequence[str] = ("acc",)) -> Dict[str, float]:
    """Mean and std over networks of each metric in `keys`: from per-network metric dicts, or from plain
    accuracies."""
    table = [v if isinstance(v, dict) else {"acc": v} for v in values]
    out: Dict[str, float] = {}
    for key in keys:
        column = [row[key] for row in table]
        out[f"{key}_mean"] = statistics.fmean(column)
        out[f"{key}_std"] = statistics.stdev(column) if len(column) > 1 else 0.0
    out["n_nets"] = len(table)
    return out


def resolve_protocol(cfg) -> None:
    """Fill in what the evaluation protocol leaves to the run: eval.augment (the method's augment) and
    eval.train_epochs (the papers' 1,000 with DSA, else 300), so config.yaml records what ran."""
    e = cfg.eval
    if e.augment is None:
        e.augment = cfg.augment.name if cfg.dataset.modality == "image" else "none"
    if e.train_epochs is None:
        e.train_epochs = 1000 if e.augment == "dsa" else 300


def make_augment_each(cfg) -> Optional[Callable[[torch.Tensor, int], torch.Tensor]]:
    """eval.augment=dsa: DSA's transforms (augment.* settings) drawn per example, from a seed per minibatch;
    None for eval.augment=none."""
    if cfg.eval.augment != "dsa":
        return None
    from omegaconf import OmegaConf

    from dd_runner.data.augment import SiameseAugment

    transform = SiameseAugment(OmegaConf.merge(cfg.augment, {"name": "dsa"}))

    def augment_each(x: torch.Tensor, seed: int) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([transform(x[i:i + 1], derive_seed(seed, i)) for i in range(len(x))])

    return augment_each


def lr_choice(eval_cfg) -> str:
    """How the evaluation lr is chosen, for logs and protocol lines: the one value of eval.lr_grid, or
    tuned on validation over the grid (Judge.tune_lr)."""
    grid = eval_cfg.lr_grid
    return f"lr {grid[0]} (not tuned)" if len(grid) == 1 else "lr tuned on validation"


def make_schedule(eval_cfg, seed: int, x: torch.Tensor, targets: torch.Tensor, epochs: int, *,
                  lrs: Optional[torch.Tensor] = None, lr: Optional[float] = None, teacher,
                  extras: Optional[Dict[str, torch.Tensor]], augment=None) -> Schedule:
    """The evaluation schedule for a set laid out as (steps, examples, ...): with `lrs` (learned, one per
    unrolled step) under schedule=distilled, else with the fixed `lr`. `extras`: further inputs of the
    inner loss laid out like x (text: attention labels), or scalars shared by every step. `teacher` and
    `extras` have no default on purpose: a caller that left a set's attention labels out once made
    validation disagree with the test figures, so every caller states them (None where a set has none). `augment(x, seed)`
    (eval.augment) transforms every minibatch as networks train on it: the same draws for every network,
    so batched and looped evaluation agree (a teacher labels the examples before their transform)."""
    if eval_cfg.schedule == "distilled":
        if lrs is None:
            lrs = torch.full((x.shape[0] * epochs,), float(lr), device=x.device, dtype=x.dtype)
        fixed = fixed_steps(x, targets, lrs, epochs, teacher, extras)
        if augment is None:
            return Schedule(fixed)
        return Schedule(lambda: (Step(augment(s.x.detach(), derive_seed(seed, "eval-augment", t)), s.y, s.lr, s.extras)
                                 for t, s in enumerate(fixed)))
    xs, ys = x.flatten(0, 1).detach(), targets.flatten(0, 1).detach()
    extras = {k: v.detach().flatten(0, 1) if v.dim() else v.detach() for k, v in (extras or {}).items()}
    if teacher is not None:  # the teacher labels each example once
        extras.update(teacher.extras(xs))
    return Schedule(lambda: minibatch_steps(xs, ys, extras, float(lr), eval_cfg.train_epochs, eval_cfg.train_batch, seed,
                                            augment), eval_cfg.train_momentum, eval_cfg.train_weight_decay)

"""The figures of a run: the distilled set and the baselines, measured by one protocol.

Baselines get the distilled set's budget (examples per class per step, steps, epochs) and hard labels.
Their fixed lr is tuned on the validation split over `eval.lr_grid`; `random_real` is also trained with
the distilled set's learned lrs, to separate what the data contribute from what the lrs contribute.
`full_data` trains on the whole training split the ordinary way: the ceiling.
"""

from __future__ import annotations

import logging
import statistics
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from dd_runner.context import RunContext
from dd_runner.eval.baselines import SELECTORS
from dd_runner.eval.protocol import accuracies, summary
from dd_runner.progress import progress
from dd_runner.seeding import generator
from dd_runner.synthetic import fixed_steps
from dd_runner.train import train_full

log = logging.getLogger(__name__)
Row = Tuple[str, Dict[str, float]]


def _record(metrics: Dict[str, float], rows: List[Row], prefix: str, name: str, stats: Dict[str, float]) -> None:
    for key, value in stats.items():
        metrics[f"{prefix}/{key}"] = value
    rows.append((name, stats))


def tune_lr(ctx: RunContext, x: torch.Tensor, targets: torch.Tensor, epochs: int, nets) -> float:
    """The fixed lr of the grid with the best validation accuracy (first of equals)."""
    best_lr, best_acc = None, -1.0
    for lr in ctx.cfg.eval.lr_grid:
        lrs = torch.full((x.shape[0] * epochs,), float(lr), device=x.device, dtype=x.dtype)
        acc = statistics.fmean(accuracies(ctx.learner, nets, fixed_steps(x, targets, lrs, epochs),
                                          ctx.data.val, ctx.cfg.eval.batch_size))
        if acc > best_acc:
            best_lr, best_acc = float(lr), acc
    return best_lr


def full_data_training(ctx: RunContext, theta0, net: int = 0):
    """One network trained on the whole training split (train.*), with a progress bar."""
    t = ctx.cfg.train
    total = t.epochs * -(-len(ctx.data.train) // t.batch_size)
    with progress("training on the full split", total=total) as bar:
        return train_full(ctx.learner, theta0, ctx.data, t, ctx.cfg.seed, ctx.cfg.eval.batch_size,
                          on_step=lambda loss: bar.update(loss=loss), net=net)


def full_data(ctx: RunContext, nets) -> Dict[str, float]:
    return summary([full_data_training(ctx, theta0, i)[1]["test/acc"] for i, theta0 in enumerate(nets)])


def evaluate(ctx: RunContext, synth) -> Tuple[Dict[str, float], List[Row]]:
    if ctx.data.task == "language_modeling":  # perplexity, and baselines without classes
        from dd_runner.eval.lm_report import evaluate_lm

        return evaluate_lm(ctx, synth)
    e, learner, data = ctx.cfg.eval, ctx.learner, ctx.data
    test_nets = ctx.inits.eval_nets(e.nets)
    val_nets = ctx.inits.eval_nets(e.val_nets, purpose="val")
    metrics: Dict[str, float] = {}
    rows: List[Row] = []
    steps = synth.unrolled()

    with progress("evaluating", total=len(e.baselines) + 1) as bar:
        metrics["val/acc_mean"] = statistics.fmean(accuracies(learner, val_nets, steps, data.val, e.batch_size))
        stats = summary(accuracies(learner, test_nets, steps, data.test, e.batch_size))
        _record(metrics, rows, "test", "distilled", {**stats, "lr": "learned"})
        bar.update(acc=stats["acc_mean"])

        hard = F.one_hot(synth.classes, synth.num_classes).to(synth.data.dtype).expand(synth.steps, -1, -1)
        gen = generator(ctx.cfg.seed, "baselines")
        tune_nets = val_nets[: e.tune_nets]
        for name in e.baselines:
            if name == "full_data":
                stats = full_data(ctx, test_nets[: max(1, e.full_data_nets)])
                _record(metrics, rows, f"baselines/{name}", name, {**stats, "lr": ctx.cfg.train.lr})
                bar.update()
                continue
            x = SELECTORS.get(name)(learner, data.train, synth.num_classes, synth.steps, synth.ipc, gen)
            x = x.to(synth.data.device, synth.data.dtype)
            lr = tune_lr(ctx, x, hard, synth.epochs, tune_nets)
            lrs = torch.full((synth.num_steps,), lr, device=x.device, dtype=x.dtype)
            stats = summary(accuracies(learner, test_nets, fixed_steps(x, hard, lrs, synth.epochs), data.test, e.batch_size))
            _record(metrics, rows, f"baselines/{name}", f"{name} (tuned lr)", {**stats, "lr": lr})
            if name == "random_real":
                learned = fixed_steps(x, hard, synth.lrs().detach(), synth.epochs)
                stats = summary(accuracies(learner, test_nets, learned, data.test, e.batch_size))
                _record(metrics, rows, f"baselines/{name}_learned_lrs", f"{name} (distilled lrs)",
                        {**stats, "lr": "learned"})
            bar.update()
    # String-valued "lr" entries are for the table; metrics.json keeps numbers only.
    metrics = {k: v for k, v in metrics.items() if not isinstance(v, str)}
    return metrics, rows

"""The Judge: trains the evaluation networks on a candidate set (the distilled one or a baseline) by the
protocol of eval/protocol.py and records its figures. Shared by the classification report (report.py)
and the language-model report (lm_report.py).

Learned lrs are used as they are only under eval.schedule=distilled; otherwise a set gets the fixed lr of
`eval.lr_grid` that is best on the validation split. The test split is touched only for the figures.
"""

from __future__ import annotations

import statistics
from typing import Dict, List, Optional, Tuple

import torch

from dd_runner.context import RunContext
from dd_runner.eval.full_data import full_data_training
from dd_runner.eval.protocol import accuracies, make_augment_each, make_schedule, scores, summary

Row = Tuple[str, Dict[str, float]]


class Judge:
    """Trains the evaluation networks on candidate sets and records their figures."""

    def __init__(self, ctx: RunContext, synth, keys: Tuple[str, ...] = ("acc",)):
        """keys: the metrics reported as mean and std over networks (language models: ppl, loss, acc);
        "acc" (next-token accuracy for a language model) is what lrs and sets are selected by."""
        e = ctx.cfg.eval
        self.ctx, self.e, self.synth, self.keys = ctx, e, synth, keys
        self.test_nets = ctx.inits.eval_nets(e.nets)
        self.val_nets = ctx.inits.eval_nets(e.val_nets, purpose="val")
        self.metrics: Dict[str, float] = {}
        self.rows: List[Row] = []
        self._full: Dict[int, tuple] = {}
        self.augment = make_augment_each(ctx.cfg)  # eval.augment: the same for the set and every baseline

    def schedule(self, x, targets, lrs: Optional[torch.Tensor], lr: Optional[float], *, extras):
        return make_schedule(self.e, self.ctx.cfg.seed, x, targets, self.synth.epochs, lrs=lrs, lr=lr,
                             teacher=self.synth.teacher, extras=extras, augment=self.augment)

    def tune_lr(self, x, targets, *, extras) -> float:
        """The fixed lr of the grid with the best validation accuracy (first of equals)."""
        if len(self.e.lr_grid) == 1:  # nothing to choose: no networks to train
            return float(self.e.lr_grid[0])
        best_lr, best_acc = None, -1.0
        for lr in self.e.lr_grid:
            accs = accuracies(self.ctx.learner, self.val_nets[: self.e.tune_nets], self.schedule(x, targets, None, lr, extras=extras),
                              self.ctx.data.val, self.e.batch_size)
            if statistics.fmean(accs) > best_acc:
                best_lr, best_acc = float(lr), statistics.fmean(accs)
        return best_lr

    def judge(self, prefix: str, name: str, x, targets, lrs: Optional[torch.Tensor], *, extras) -> Dict[str, float]:
        """Test figures of a set; learned `lrs` are used as they are only under schedule=distilled.
        `extras`: further per-step inputs of the inner loss, laid out like x (text: attention labels), None
        for a set without them (baselines); required, so that no caller forgets a set's attention labels."""
        if self.e.schedule != "distilled":
            lrs = None
        lr = None if lrs is not None else self.tune_lr(x, targets, extras=extras)
        schedule = self.schedule(x, targets, lrs, lr, extras=extras)
        stats = self.summary(scores(self.ctx.learner, self.test_nets, schedule, self.ctx.data.test, self.e.batch_size))
        stats["lr"] = lr if lr is not None else "learned"
        self.record(prefix, name, stats)
        if prefix == "test":  # the distilled set: its validation figures are what sweepers optimise
            val = self.summary(scores(self.ctx.learner, self.val_nets, schedule, self.ctx.data.val, self.e.batch_size))
            self.metrics.update({f"val/{k}_mean": val[f"{k}_mean"] for k in self.keys})
        return stats

    def summary(self, values) -> Dict[str, float]:
        return summary(values, self.keys)

    def record(self, prefix: str, name: str, stats: Dict[str, float]) -> None:
        for key, value in stats.items():
            if not isinstance(value, str):  # metrics.json keeps numbers; "learned" is for the table
                self.metrics[f"{prefix}/{key}"] = value
        self.rows.append((name, stats))

    def full_network(self, i: int):
        """Network i of the full-data ceiling, trained once (shared by full_data and the coresets)."""
        if i not in self._full:
            self._full[i] = full_data_training(self.ctx, self.test_nets[i % len(self.test_nets)], i)
        return self._full[i]

    def features(self, split) -> torch.Tensor:
        learner = self.ctx.learner
        named = learner.as_dict(self.full_network(0)[0])
        learner.module.eval()
        with torch.no_grad():
            return torch.cat([learner.real_features(named, b.to(learner.device)).float().cpu()
                              for b in split.batches(self.e.batch_size)])

"""The figures of a run: the distilled set and the baselines, measured by one protocol (eval/protocol.py).

Baselines get the distilled set's budget (examples per class per step, steps, epochs), hard labels (or
the same teacher's targets with labels=teacher) and a fixed lr tuned on the validation split over
`eval.lr_grid`; under schedule=distilled `random_real` is also trained with the distilled set's learned
lrs, to separate what the data contribute from what the lrs contribute. `full_data` trains on the whole
training split the ordinary way (the ceiling); its first network also provides the feature space of the
herding and k-center coresets.
"""

from __future__ import annotations

import logging
import statistics
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from dd_runner.context import RunContext
from dd_runner.eval.baselines import SELECTORS, ClassPool
from dd_runner.eval.protocol import accuracies, make_schedule, scores, summary
from dd_runner.progress import progress
from dd_runner.seeding import generator
from dd_runner.train import train_full

log = logging.getLogger(__name__)
Row = Tuple[str, Dict[str, float]]


def full_data_training(ctx: RunContext, theta0, net: int = 0):
    """One network trained on the whole training split (train.*), with a progress bar."""
    t = ctx.cfg.train
    total = t.epochs * -(-len(ctx.data.train) // t.batch_size)
    with progress("training on the full split", total=total) as bar:
        return train_full(ctx.learner, theta0, ctx.data, t, ctx.cfg.seed, ctx.cfg.eval.batch_size,
                          on_step=lambda loss: bar.update(loss=loss), net=net)


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

    def schedule(self, x, targets, lrs: Optional[torch.Tensor], lr: Optional[float] = None, extras=None):
        return make_schedule(self.e, self.ctx.cfg.seed, x, targets, self.synth.epochs, lrs=lrs, lr=lr,
                             teacher=self.synth.teacher, extras=extras)

    def tune_lr(self, x, targets, extras=None) -> float:
        """The fixed lr of the grid with the best validation accuracy (first of equals)."""
        best_lr, best_acc = None, -1.0
        for lr in self.e.lr_grid:
            accs = accuracies(self.ctx.learner, self.val_nets[: self.e.tune_nets], self.schedule(x, targets, None, lr, extras),
                              self.ctx.data.val, self.e.batch_size)
            if statistics.fmean(accs) > best_acc:
                best_lr, best_acc = float(lr), statistics.fmean(accs)
        return best_lr

    def judge(self, prefix: str, name: str, x, targets, lrs: Optional[torch.Tensor], extras=None) -> Dict[str, float]:
        """Test figures of a set; learned `lrs` are used as they are only under schedule=distilled.
        `extras`: further per-step inputs of the inner loss, laid out like x (text: attention labels)."""
        if self.e.schedule != "distilled":
            lrs = None
        lr = None if lrs is not None else self.tune_lr(x, targets, extras)
        schedule = self.schedule(x, targets, lrs, lr, extras)
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


def evaluate(ctx: RunContext, synth, distilled: bool = True) -> Tuple[Dict[str, float], List[Row]]:
    """The set and `eval.baselines` at its budget. distilled=False (mode=baselines): the baselines alone,
    `synth` only giving the budget (steps, examples per class, epochs, teacher) and no learned lrs."""
    if ctx.data.task == "language_modeling":  # perplexity, and baselines without classes
        from dd_runner.eval.lm_report import evaluate_lm

        return evaluate_lm(ctx, synth, distilled)
    e = ctx.cfg.eval
    judge = Judge(ctx, synth)
    learned = synth.lrs().detach() if distilled and synth.raw_lrs.requires_grad else None
    with progress("evaluating", total=len(e.baselines) + distilled) as bar:
        if distilled:
            stats = judge.judge("test", "distilled", synth.data.detach(), synth.all_targets().detach(), learned,
                                synth.all_extras())
            bar.update(acc=stats["acc_mean"])

        hard = F.one_hot(synth.classes, synth.num_classes).to(synth.data.dtype).expand(synth.steps, -1, -1)
        gen = generator(ctx.cfg.seed, "baselines")
        pool = ClassPool(ctx.learner, ctx.data.train, synth.num_classes, judge.features)
        for name in e.baselines:
            if name == "full_data":
                accs = [judge.full_network(i)[1]["test/acc"] for i in range(max(1, e.full_data_nets))]
                judge.record(f"baselines/{name}", name, {**summary(accs), "lr": ctx.cfg.train.lr})
                bar.update()
                continue
            x = SELECTORS.get(name)(pool, synth.steps, synth.ipc, gen).to(synth.data.device, synth.data.dtype)
            judge.judge(f"baselines/{name}", f"{name} (tuned lr)", x, hard, None)
            if name == "random_real" and learned is not None and e.schedule == "distilled":
                judge.judge(f"baselines/{name}_learned_lrs", f"{name} (distilled lrs)", x, hard, learned)
            bar.update()
    return judge.metrics, judge.rows

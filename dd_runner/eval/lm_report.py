"""The figures of a language-modelling run (english_quotes x GPT-Neo), by the classification protocol's
rules: networks are trained on the distilled set exactly as distilled and measured on held-out text.

Metrics: held-out perplexity (`test/ppl_mean`, `_std`), per-token loss (`test/loss_mean`) and next-token
accuracy (`test/acc_mean`, the key classification uses, so selection and sweeps work unchanged) of
  - the distilled set;
  - `baselines/untrained`: the networks before any step (for a pretrained LM: the pretrained model);
  - `baselines/random_real`: random real sequences at the same budget (steps x ipc sequences of seq_len
    tokens, their real next tokens as hard targets), with a fixed lr tuned on validation and with the
    distilled lrs (`random_real_learned_lrs`);
  - `baselines/full_data`: ordinary training on the whole training split (train.*), the ceiling.
Class means and k-means need classes and are skipped. Model selection (the baselines' lr, the kept
distilled set) uses next-token accuracy on the validation split.
"""

from __future__ import annotations

import logging
import statistics
from typing import Dict, List, Sequence, Tuple

import torch

from dd_runner.context import RunContext
from dd_runner.eval.report import full_data_training, tune_lr
from dd_runner.models.learner import Params, Step
from dd_runner.progress import progress
from dd_runner.seeding import generator
from dd_runner.synthetic import fixed_steps
from dd_runner.synthetic_text import real_sequences

log = logging.getLogger(__name__)
Row = Tuple[str, Dict[str, float]]


def lm_scores(learner, thetas: Sequence[Params], steps: Sequence[Step], split, batch_size: int) -> List[Dict[str, float]]:
    """loss / ppl / next-token accuracy of each network after training on `steps`."""
    steps = [s.detached() for s in steps]
    return [learner.evaluate(learner.train_on_steps(theta, steps), split, batch_size) for theta in thetas]


def lm_summary(scores: Sequence[Dict[str, float]], **extra) -> Dict[str, float]:
    def spread(values):
        return statistics.stdev(values) if len(values) > 1 else 0.0

    out = {}
    for key in ("ppl", "loss", "acc"):
        values = [s[key] for s in scores]
        out[f"{key}_mean"], out[f"{key}_std"] = statistics.fmean(values), spread(values)
    return {**out, "n_nets": len(scores), **extra}


def evaluate_lm(ctx: RunContext, synth) -> Tuple[Dict[str, float], List[Row]]:
    e, learner, data = ctx.cfg.eval, ctx.learner, ctx.data
    test_nets = ctx.inits.eval_nets(e.nets)
    val_nets = ctx.inits.eval_nets(e.val_nets, purpose="val")
    metrics: Dict[str, float] = {}
    rows: List[Row] = []

    def record(prefix: str, name: str, stats: Dict[str, float]) -> None:
        metrics.update({f"{prefix}/{k}": v for k, v in stats.items() if not isinstance(v, str)})
        rows.append((name, stats))

    skipped = [b for b in e.baselines if b in ("class_mean", "kmeans")]
    if skipped:
        log.info("baselines %s need classes: skipped for language modelling", ", ".join(skipped))
    with progress("evaluating", total=2 + len(e.baselines) - len(skipped)) as bar:
        val = lm_summary(lm_scores(learner, val_nets, synth.unrolled(), data.val, e.batch_size))
        metrics.update({"val/acc_mean": val["acc_mean"], "val/ppl_mean": val["ppl_mean"]})
        record("test", "distilled", lm_summary(lm_scores(learner, test_nets, synth.unrolled(), data.test, e.batch_size), lr="learned"))
        bar.update(ppl=metrics["test/ppl_mean"])
        record("baselines/untrained", "untrained", lm_summary(lm_scores(learner, test_nets, [], data.test, e.batch_size), lr="-"))
        bar.update()

        for name in e.baselines:
            if name in skipped:
                continue
            if name == "full_data":
                scores = []
                for i, theta0 in enumerate(test_nets[: max(1, e.full_data_nets)]):
                    params, _ = full_data_training(ctx, theta0, i)
                    scores.append(learner.evaluate(params, data.test, e.batch_size))
                record("baselines/full_data", "full_data", lm_summary(scores, lr=ctx.cfg.train.lr))
            elif name == "random_real":
                count, S = synth.steps * synth.ipc, synth.data.shape[2]
                real, targets = real_sequences(learner, data.train, count, S, generator(ctx.cfg.seed, "baselines"))
                x = learner.to_synthetic_space(real.to(learner.device)).view(synth.steps, synth.ipc, S, -1)
                y = targets.to(x.device, x.dtype).view(synth.steps, synth.ipc, S, -1)
                lr = tune_lr(ctx, x, y, synth.epochs, val_nets[: e.tune_nets])
                lrs = torch.full((synth.num_steps,), lr, device=x.device, dtype=x.dtype)
                record("baselines/random_real", "random_real (tuned lr)",
                       lm_summary(lm_scores(learner, test_nets, fixed_steps(x, y, lrs, synth.epochs), data.test, e.batch_size), lr=lr))
                learned = fixed_steps(x, y, synth.lrs().detach(), synth.epochs)
                record("baselines/random_real_learned_lrs", "random_real (distilled lrs)",
                       lm_summary(lm_scores(learner, test_nets, learned, data.test, e.batch_size), lr="learned"))
            bar.update()
    return metrics, rows

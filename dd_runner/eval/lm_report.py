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
from typing import Dict, List, Tuple

from dd_runner.context import RunContext
from dd_runner.core.progress import progress
from dd_runner.core.seeding import generator
from dd_runner.eval.judge import Judge, Row
from dd_runner.eval.protocol import scores
from dd_runner.synthetic.text import real_sequences

log = logging.getLogger(__name__)
LM_KEYS = ("ppl", "loss", "acc")


def evaluate_lm(ctx: RunContext, synth, distilled: bool = True) -> Tuple[Dict[str, float], List[Row]]:
    e, learner, data = ctx.cfg.eval, ctx.learner, ctx.data
    judge = Judge(ctx, synth, keys=LM_KEYS)
    learned = synth.lrs().detach() if distilled and synth.raw_lrs.requires_grad else None
    skipped = [b for b in e.baselines if b not in ("random_real", "full_data")]
    if skipped:
        log.info("baselines %s need classes: skipped for language modelling", ", ".join(skipped))
    with progress("evaluating", total=1 + distilled + len(e.baselines) - len(skipped)) as bar:
        if distilled:
            stats = judge.judge("test", "distilled", synth.data.detach(), synth.all_targets().detach(), learned,
                                extras=synth.all_extras())
            bar.update(ppl=stats["ppl_mean"])
        untrained = scores(learner, judge.test_nets, [], data.test, e.batch_size)  # no step: as drawn
        judge.record("baselines/untrained", "untrained", {**judge.summary(untrained), "lr": "-"})
        bar.update()
        for name in e.baselines:
            if name == "full_data":
                nets = range(max(1, e.full_data_nets))
                trained = [learner.evaluate(judge.full_network(i)[0], data.test, e.batch_size) for i in nets]
                judge.record("baselines/full_data", "full_data", {**judge.summary(trained), "lr": ctx.cfg.train.lr})
            elif name == "random_real":  # real sequences at the same budget, their next tokens as hard targets
                count, S = synth.steps * synth.ipc, synth.data.shape[2]
                real, targets = real_sequences(learner, data.train, count, S, generator(ctx.cfg.seed, "baselines"))
                x = learner.to_synthetic_space(real.to(learner.device)).view(synth.steps, synth.ipc, S, -1)
                y = targets.to(x.device, x.dtype).view(synth.steps, synth.ipc, S, -1)
                judge.judge("baselines/random_real", "random_real (tuned lr)", x, y, None, extras=None)
                if learned is not None and e.schedule == "distilled":
                    judge.judge("baselines/random_real_learned_lrs", "random_real (distilled lrs)", x, y, learned,
                                extras=None)
            else:
                continue
            bar.update()
    return judge.metrics, judge.rows

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
from typing import Dict, List, Tuple

import torch.nn.functional as F

from dd_runner.context import RunContext
from dd_runner.core.progress import progress
from dd_runner.core.seeding import generator
from dd_runner.eval.baselines import SELECTORS, ClassPool
from dd_runner.eval.cross_arch import Candidate, cross_architecture
from dd_runner.eval.judge import Judge, Row
from dd_runner.eval.protocol import summary
from dd_runner.eval.results import protocol_text

log = logging.getLogger(__name__)


def evaluate(ctx: RunContext, synth, distilled: bool = True) -> Tuple[Dict[str, float], List[Row]]:
    """The set and `eval.baselines` at its budget. distilled=False (mode=baselines): the baselines alone,
    `synth` only giving the budget (steps, examples per class, epochs, teacher) and no learned lrs."""
    if ctx.data.task == "language_modeling":  # perplexity, and baselines without classes
        from dd_runner.eval.lm_report import evaluate_lm

        metrics, rows = evaluate_lm(ctx, synth, distilled)
    else:
        metrics, rows = evaluate_classification(ctx, synth, distilled)
    return {**metrics, "eval/protocol": protocol_text(ctx.cfg)}, rows


def evaluate_classification(ctx: RunContext, synth, distilled: bool = True) -> Tuple[Dict[str, float], List[Row]]:
    e = ctx.cfg.eval
    judge = Judge(ctx, synth)
    learned = synth.lrs().detach() if distilled and synth.raw_lrs.requires_grad else None
    candidates: List[Candidate] = []  # the sets eval.models judges on other architectures too
    with progress("evaluating", total=len(e.baselines) + distilled) as bar:
        if distilled:
            x, targets, extras = synth.data.detach(), synth.all_targets().detach(), synth.all_extras()
            stats = judge.judge("test", "distilled", x, targets, learned, extras=extras)
            candidates.append(Candidate("test", "distilled", x, targets, extras))
            bar.update(acc=stats["acc_mean"])

        hard = F.one_hot(synth.classes, synth.num_classes).to(synth.data.dtype).expand(synth.steps, -1, -1)
        gen = generator(ctx.cfg.seed, "baselines")
        pool = ClassPool(ctx.learner, ctx.data.train, synth.num_classes, judge.features)
        baselines: List[Candidate] = []
        for name in e.baselines:
            if name == "full_data":
                accs = [judge.full_network(i)[1]["test/acc"] for i in range(max(1, e.full_data_nets))]
                judge.record(f"baselines/{name}", name, {**summary(accs), "lr": ctx.cfg.train.lr})
                baselines.append(Candidate(f"baselines/{name}", name))
                bar.update()
                continue
            x = SELECTORS.get(name)(pool, synth.steps, synth.ipc, gen).to(synth.data.device, synth.data.dtype)
            judge.judge(f"baselines/{name}", f"{name} (tuned lr)", x, hard, None, extras=None)
            baselines.append(Candidate(f"baselines/{name}", f"{name} (tuned lr)", x, hard))
            if name == "random_real" and learned is not None and e.schedule == "distilled":
                judge.judge(f"baselines/{name}_learned_lrs", f"{name} (distilled lrs)", x, hard, learned, extras=None)
            bar.update()
    if e.models:
        cross_architecture(ctx, synth, judge, candidates + (baselines if e.cross_baselines else []))
    return judge.metrics, judge.rows

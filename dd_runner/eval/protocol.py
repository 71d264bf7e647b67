"""How a distilled set (or a baseline) is judged: train networks on it exactly as distilled — same step
order, lrs and epochs — and measure them on a held-out split.

Fixed init evaluates its one theta_0; random / pretrained init evaluate `eval.nets` initialisations never
seen in distillation, reported as mean +- std. The validation split serves model selection (which
distilled set to keep, which lr a baseline gets); the test split only the reported figures.

Networks are trained and tested together under vmap (`batched_accuracies`) whenever the model allows it
(`Learner.vmap_blocker`); otherwise one at a time (`looped_accuracies`). Both give the same figures up
to floating-point rounding (identical in float64; in fp32 the batched kernels sum in another order,
and training can amplify that into a few test examples of one net).
"""

from __future__ import annotations

import statistics
from typing import Dict, List, Sequence

from dd_runner.data.bundle import Split
from dd_runner.models.learner import Learner, Params, Step
from dd_runner.models.stacked import StackedNets, groups, stack


def accuracies(learner: Learner, thetas: Sequence[Params], steps: Sequence[Step], split: Split,
               batch_size: int) -> List[float]:
    """Test accuracy of each network after training on `steps` (no meta-graph)."""
    if batchable(learner):
        return batched_accuracies(learner, thetas, steps, split, batch_size)
    return looped_accuracies(learner, thetas, steps, split, batch_size)


def batchable(learner: Learner) -> bool:
    """Whether evaluation can batch this learner's networks: vmap must work on it, and its metrics must
    come from the vmap-safe `batch_stats` / `metrics_from` pair (a learner that replaces `evaluate`
    wholesale is measured its own way, one network at a time)."""
    return learner.vmap_blocker() is None and type(learner).evaluate is Learner.evaluate


def looped_accuracies(learner: Learner, thetas: Sequence[Params], steps: Sequence[Step], split: Split,
                      batch_size: int) -> List[float]:
    steps = [s.detached() for s in steps]
    return [learner.evaluate(learner.train_on_steps(theta, steps), split, batch_size)["acc"] for theta in thetas]


def batched_accuracies(learner: Learner, thetas: Sequence[Params], steps: Sequence[Step], split: Split,
                       batch_size: int) -> List[float]:
    """All nets at once, in groups small enough that one inner step of a group holds at most
    `batch_size` synthetic examples, and test passes of `batch_size` examples over the whole group:
    memory is bounded by `batch_size` as in the loop, plus the stacked parameters of a group."""
    nets = StackedNets(learner)
    per_group = max(1, batch_size // max(1, len(steps[0].x))) if steps else len(thetas)
    split = split.to(learner.device)  # once, not once per (small) batch of every group
    accs: List[float] = []
    for group in groups(thetas, per_group):
        if len(group) == 1:  # nothing to batch: skip vmap's overhead
            accs += looped_accuracies(learner, group, steps, split, batch_size)
            continue
        trained = nets.train_on_steps(stack(group), steps)
        accs += [m["acc"] for m in nets.evaluate(trained, split, batch_size)]
    return accs


def summary(accs: Sequence[float]) -> Dict[str, float]:
    return {
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "n_nets": len(accs),
    }

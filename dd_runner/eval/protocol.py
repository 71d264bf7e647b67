"""How a distilled set (or a baseline) is judged: train networks on it exactly as distilled — same step
order, lrs and epochs — and measure them on a held-out split.

Fixed init evaluates its one theta_0; random / pretrained init evaluate `eval.nets` initialisations never
seen in distillation, reported as mean +- std. The validation split serves model selection (which
distilled set to keep, which lr a baseline gets); the test split only the reported figures.
"""

from __future__ import annotations

import statistics
from typing import Dict, List, Sequence

from dd_runner.data.bundle import Split
from dd_runner.distributed import gather, shard
from dd_runner.models.learner import Learner, Params, Step


def accuracies(learner: Learner, thetas: Sequence[Params], steps: Sequence[Step], split: Split,
               batch_size: int) -> List[float]:
    """Test accuracy of each network after training on `steps` (no meta-graph). Under torchrun each rank
    trains its share of the networks and every rank gets all accuracies, in order."""
    steps = [s.detached() for s in steps]
    mine = [learner.evaluate(learner.train_on_steps(theta, steps), split, batch_size)["acc"] for theta in shard(thetas)]
    return gather(mine, len(thetas))


def summary(accs: Sequence[float]) -> Dict[str, float]:
    return {
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "n_nets": len(accs),
    }

"""The evaluation of a loaded set, replayed from its header with the code the run used: eval/protocol.py's
`make_schedule` (step order, learned or tuned lrs, the /10 halfway decay, momentum, weight decay, batch
order) and `make_augment_each` (eval.augment=dsa: the transforms and their per-minibatch seeds).

The reuse API sits above evaluation in the package's layering (it replays the run's evaluation), so it
imports eval/protocol.py here, when a schedule is built.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Dict, Optional

import torch

from dd_runner.core.errors import DataError
from dd_runner.core.seeding import derive_seed

EVAL_FIELDS = ("schedule", "train_epochs", "train_batch", "train_momentum", "train_weight_decay")


def augment_settings(protocol: dict, config: dict) -> Dict[str, object]:
    """eval.augment as the run applied it: the protocol's record, or for a dd-runner/2 file (which kept it in
    the config only) the config's eval.augment with its augment.* settings."""
    if "augment" in protocol:
        return dict(protocol["augment"])
    if config.get("eval", {}).get("augment") == "dsa":
        return {**config.get("augment", {}), "name": "dsa"}
    return {"name": "none"}


def make_augment(protocol: dict, config: dict):
    """The run's `augment(x, seed)` for its evaluation networks, or None (eval.augment=none)."""
    from omegaconf import OmegaConf

    from dd_runner.eval.protocol import make_augment_each

    settings = augment_settings(protocol, config)
    return make_augment_each(OmegaConf.create({"eval": {"augment": settings["name"]}, "augment": settings}))


def fixed_lr(protocol: dict, lrs: torch.Tensor, arch: Optional[str] = None) -> Optional[float]:
    """The one lr the evaluation trained with, or None where it used the set's learned lrs.

    An eval.models architecture: its own tuned lr. The distillation architecture: the tuned lr in the header;
    a set without one (a snapshot, written before evaluation) uses the lr validation used, the set's first."""
    if arch is not None:
        lr = protocol["models"][arch]["lr"]
        if lr is None:
            raise DataError(f"the header records no tuned lr for eval.models={arch} (the run did not finish "
                            "evaluating it): train it with your own lr")
        return float(lr)
    if protocol.get("lr") is not None:
        return float(protocol["lr"])
    return None if protocol.get("schedule", "distilled") == "distilled" else float(lrs.reshape(-1)[0])


def build_schedule(protocol: dict, config: dict, data: torch.Tensor, targets: torch.Tensor, lrs: torch.Tensor,
                   epochs: int, extras: Dict[str, torch.Tensor], arch: Optional[str] = None):
    """eval/protocol.py's Schedule for this set, as the run built it for the figure it reports."""
    from dd_runner.eval.protocol import make_schedule

    eval_cfg = SimpleNamespace(**{k: protocol.get(k) for k in EVAL_FIELDS})
    eval_cfg.schedule = eval_cfg.schedule or "distilled"
    lr = fixed_lr(protocol, lrs, arch)
    learned = lrs.expand(data.shape[0] * epochs) if lr is None else None
    # teacher=None: the teacher's probabilities travel in the file (extras["teacher_probs"]), computed as the
    # run's evaluation computed them
    return make_schedule(eval_cfg, int(protocol.get("seed", 0)), data, targets, epochs, lrs=learned, lr=lr,
                         teacher=None, extras=extras, augment=make_augment(protocol, config))


def evaluation_seed(protocol: dict, net: int) -> int:
    """The seed of the run's evaluation network `net` (models/inits.py InitSampler.eval_nets: every
    architecture draws net i from the same derived seed)."""
    return derive_seed(int(protocol.get("seed", 0)), "eval", int(net))

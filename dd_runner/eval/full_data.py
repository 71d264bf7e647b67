"""Ordinary training on the full training split: `dd-run mode=train` (the ceiling, and the checkpoint
that `init=pretrained` loads) and the `full_data` baseline.

The epoch kept is the one with the best validation accuracy; its test accuracy is what is reported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

import torch

from dd_runner.core.errors import RunError
from dd_runner.core.progress import progress
from dd_runner.core.seeding import generator
from dd_runner.data.bundle import DataBundle
from dd_runner.models.learner import Learner, Params

if TYPE_CHECKING:  # the context is built by run(); only its type is needed here
    from dd_runner.context import RunContext

log = logging.getLogger(__name__)


def train_full(learner: Learner, theta0: Params, data: DataBundle, cfg, seed: int, eval_batch_size: int,
               on_step: Optional[Callable[[float], None]] = None, net: int = 0,
               on_epoch: Optional[Callable[[int, Params], None]] = None,
               select_best: bool = True) -> Tuple[Params, Dict[str, float]]:
    """Train `theta0` on the full training split; `net` tells the shuffling streams of several nets apart.
    `on_epoch(epoch, params)` sees the parameters after every epoch (expert trajectories);
    `select_best=False` keeps the last epoch instead of the best one on validation."""
    params = [p.detach().clone().requires_grad_() for p in theta0]
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    best: Dict[str, float] = {"val/acc": -1.0}
    best_params = tuple(p.detach().clone() for p in params)
    n = len(data.train)
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=generator(seed, "full-data", net, epoch))
        for start in range(0, n, cfg.batch_size):
            batch = data.train.select(order[start:start + cfg.batch_size]).to(learner.device)
            loss = learner.real_loss(tuple(params), batch, train_mode=True)
            if not torch.isfinite(loss):
                raise RunError(f"full-data training diverged (loss {loss.item()}) in epoch {epoch}; lower train.lr (now {cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_step:
                on_step(loss.item())
        if on_epoch:
            on_epoch(epoch + 1, tuple(params))
        val = learner.evaluate(tuple(params), data.val, eval_batch_size)["acc"]
        log.info("full-data epoch %d: val acc %.4f", epoch + 1, val)
        if val > best["val/acc"] or not select_best:
            best = {"val/acc": val, "epoch": epoch + 1}
            best_params = tuple(p.detach().clone() for p in params)
    best["test/acc"] = learner.evaluate(best_params, data.test, eval_batch_size)["acc"]
    return best_params, best


def full_data_training(ctx: RunContext, theta0, net: int = 0):
    """One network trained on the whole training split (train.*), with a progress bar."""
    t = ctx.cfg.train
    total = t.epochs * -(-len(ctx.data.train) // t.batch_size)
    with progress("training on the full split", total=total) as bar:
        return train_full(ctx.learner, theta0, ctx.data, t, ctx.cfg.seed, ctx.cfg.eval.batch_size,
                          on_step=lambda loss: bar.update(loss=loss), net=net)

"""Performance matching: Algorithm 1 of Wang et al. 2018 with multiple steps, epochs and learned lrs.

    1  initialise synthetic data x~ (noise or real examples) and step sizes lr~
    2  for each outer iteration:
    3      take a minibatch of real training data
    4      sample initial weights theta_0^(j) ~ p(theta_0)
    5-7    for each theta_0^(j): train on x~ for steps x epochs GD steps, measure the loss on the
           real batch (summed after every step with distill.accumulate_loss)
    8      meta-gradient of the summed real loss w.r.t. x~, lr~ (and learned labels) via the engine
    9      Adam step on x~, lr~, labels; StepLR decay

Under torchrun the nets of line 4 are split across processes and their meta-gradients summed
(dd_runner.distributed.meta_gradient); every process then takes the same step.
"""

from __future__ import annotations

import logging
import math

import torch

from dd_runner.context import Distilled, LoopStats, RunContext
from dd_runner.data.stream import RealBatches
from dd_runner.device import current_loss_scale
from dd_runner.distributed import meta_gradient
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.errors import RunError
from dd_runner.eval.selection import ValidationSelection
from dd_runner.progress import progress
from dd_runner.synthetic import make_synthetic

log = logging.getLogger(__name__)


def performance_matching(ctx: RunContext) -> Distilled:
    cfg, d = ctx.cfg, ctx.cfg.distill
    synth = make_synthetic(cfg, ctx.data, ctx.learner, cfg.seed)                      # 1
    params = synth.learnable()
    opt = torch.optim.Adam(params, lr=d.lr, betas=tuple(d.betas))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=d.decay_every or max(1, d.iterations // 10),
                                            gamma=d.decay_factor)
    scaler = ctx.precision.grad_scaler()
    engine = ENGINES.get(d.engine)
    batches = RealBatches(ctx.data.train, d.batch_size, cfg.seed, ctx.device)
    selection = ValidationSelection(ctx, synth)
    stats = LoopStats()
    # Everything the loop changes, so that a checkpoint restores the run exactly.
    state = {"synth": synth, "optimizer": opt, "scheduler": sched, "scaler": scaler, "batches": batches,
             "selection": selection, "stats": stats}
    first = ctx.checkpoints.restore(state, allow_config_change=ctx.resuming)
    if first == 0:
        ctx.checkpoints.save(state, 0)

    with ctx.checkpoints.stop_signals(), progress("distilling", total=d.iterations, completed=first) as bar:
        for it in range(first, d.iterations):                                          # 2
            real = batches.next()                                                      # 3
            thetas = ctx.inits.train_nets(it, d.sample_nets)                           # 4
            options = EngineOptions(d.accumulate_loss, current_loss_scale(scaler, ctx.device), d.recompute_every)
            meta = meta_gradient(engine, ctx.learner, thetas, synth, real, options)    # 5-8
            if not math.isfinite(meta.loss):
                raise RunError(f"the distillation loss became {meta.loss} at iteration {it + 1}: lower "
                               f"distill.lr (now {d.lr}) or distill.init_lr (now {d.init_lr}), or set "
                               f"distill.clip_grad; the last good checkpoint is kept")
            for p, g in zip(params, meta.grads):
                p.grad = g
            scaler.unscale_(opt)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, d.clip_grad or math.inf)
            scaler.step(opt)                                                           # 9
            scaler.update()
            sched.step()
            stats.loss = meta.loss

            done = it + 1
            record = {}
            if done % cfg.logger.log_every == 0 or done == d.iterations:
                lrs = synth.lrs().detach()
                record = {"distill/loss": meta.loss, "distill/grad_norm": float(grad_norm),
                          "distill/lr_mean": lrs.mean().item(), "distill/lr_min": lrs.min().item(),
                          "distill/lr_max": lrs.max().item(), "distill/outer_lr": sched.get_last_lr()[0]}
            if selection.due(done):
                record["val/acc_mean"] = selection.check(done, synth)
                log.info("iteration %d: loss %.4f, val acc %.4f", done, meta.loss, record["val/acc_mean"])
            if record:
                ctx.tracker.log(record, step=done)
            bar.update(loss=meta.loss, val=selection.best_acc)
            ctx.checkpoints.step(state, done)

    selection.finish(synth, d.iterations)
    return Distilled(synth=synth, iterations=d.iterations, seconds=stats.elapsed(), final_loss=stats.loss,
                     best_iteration=selection.best_iteration, best_val_acc=selection.best_acc)

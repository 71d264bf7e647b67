"""The outer loop every method shares: optimise the synthetic set for distill.iterations steps.

A method supplies `objective(iteration, loss_scale) -> MetaGradient` (its loss and the gradient of the
synthetic set's learnable tensors); the loop does the rest the same way for all of them: the optimiser
(Adam or SGD) and StepLR, AMP loss scaling, gradient clipping, the non-finite check, logging, validation
with best-set selection (also among running averages of the set: `distill.average`), checkpoints and
resume, stop signals, and what it cost (methods/costs.py: validation and checkpoints apart). Performance
matching's step may be captured as one CUDA graph (methods/captured_step.py, distill.cuda_graph).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, Optional

import torch

from dd_runner.context import Distilled, RunContext
from dd_runner.core.device import current_loss_scale
from dd_runner.core.errors import RunError
from dd_runner.core.progress import progress
from dd_runner.engines import MetaGradient
from dd_runner.eval.selection import ValidationSelection
from dd_runner.methods.averaging import SetAverage
from dd_runner.methods.captured_step import StaticStep, choose
from dd_runner.methods.costs import LoopCosts

log = logging.getLogger(__name__)
Objective = Callable[[int, float], MetaGradient]


def decay_period(d) -> int:
    """Outer iterations between lr decays: distill.decay_every, or a tenth of the run (so that a shorter
    distill.iterations keeps the schedule's shape: ten decays per run)."""
    return d.decay_every or max(1, d.iterations // 10)


def make_optimizer(d, synth, capturable: bool = False) -> torch.optim.Optimizer:
    """distill.optimizer over the synthetic data and labels; the step sizes may get their own lr.
    capturable: Adam for a captured step (distill.cuda_graph), its lrs device tensors (lrs_as_tensors)."""
    lr_params = [p for p in (synth.raw_lrs,) if p.requires_grad]
    others = [p for p in synth.learnable() if p is not synth.raw_lrs]
    groups = [{"params": others}] + ([{"params": lr_params, "lr": d.lr_lr or d.lr}] if lr_params else [])
    if d.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=d.lr, momentum=d.momentum)
    return torch.optim.Adam(groups, lr=d.lr, betas=tuple(d.betas), capturable=capturable)


def lrs_as_tensors(opt: torch.optim.Optimizer, device: Optional[torch.device]) -> None:
    """Each group's lr as a 0-d tensor on `device` (a captured Adam step reads it there, and StepLR writes
    its decays into it), or as a float (device None). Also after a checkpoint restore, whichever way the
    checkpoint's run held them."""
    for group in opt.param_groups:
        lr = float(group["lr"])
        group["lr"] = torch.tensor(lr, device=device) if device is not None else lr


def optimise(ctx: RunContext, synth, objective: Objective, state: Dict[str, Any] = None) -> Distilled:
    """Run the outer loop; `state`: the method's own resumable pieces (data streams, networks). An objective
    given as `StepParts` (inputs and device work apart) may be captured as a CUDA graph (distill.cuda_graph)."""
    cfg, d = ctx.cfg, ctx.cfg.distill
    params = synth.learnable()
    static_step = choose(cfg, ctx.device, objective)  # the step on static buffers (StaticStep) ...
    graph = static_step and ctx.device.type == "cuda"  # ... captured as a CUDA graph (a CPU rehearses it eagerly)
    opt = make_optimizer(d, synth, capturable=graph)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=decay_period(d), gamma=d.decay_factor)
    scaler = ctx.precision.grad_scaler()
    selection = ValidationSelection(ctx, synth)
    stats = LoopCosts()
    average = SetAverage(params, d.average) if d.average else None
    # Everything the loop changes, so that a checkpoint restores the run exactly.
    state = {"synth": synth, "optimizer": opt, "scheduler": sched, "scaler": scaler, "selection": selection,
             "stats": stats, **({"average": average} if average else {}), **(state or {})}
    first = ctx.checkpoints.restore(state, allow_config_change=ctx.resuming)
    lrs_as_tensors(opt, ctx.device if graph else None)
    if first == 0:
        with stats.timing("checkpoint"):
            ctx.checkpoints.save(state, 0)

    def apply_step() -> torch.Tensor:
        """The update from the gradients in .grad: unscale (fp16), clip, optimiser step; the gradient norm."""
        scaler.unscale_(opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, d.clip_grad or math.inf)
        scaler.step(opt)
        scaler.update()
        return grad_norm

    static = StaticStep(objective, params, apply_step, 1.0, capture=graph,
                        required=str(d.get("cuda_graph", "auto")).lower() == "true") if static_step else None
    with ctx.checkpoints.stop_signals(), progress("distilling", total=d.iterations, completed=first) as bar:
        for it in range(first, d.iterations):
            if static is None:
                meta = objective(it, current_loss_scale(scaler, ctx.device))
                # The one host-device sync of an outer step (fp32 / bf16; fp16's GradScaler adds its own): the
                # loss is read once, so that a non-finite one stops the run before it reaches the set.
                loss = finite_loss(meta, it, d)
                for p, g in zip(params, meta.grads):
                    p.grad = g
                grad_norm = apply_step()
            else:  # one replay holds the update too: the loss is read (and checked) after it
                meta, grad_norm = static.step(it)
                loss = finite_loss(meta, it, d)
            sched.step()
            stats.loss = loss
            if average:
                average.update()

            done = it + 1
            record = {}
            if done % cfg.logger.log_every == 0 or done == d.iterations:
                lrs = synth.lrs().detach()
                figures = torch.stack([grad_norm.float(), lrs.mean(), lrs.min(), lrs.max()]).tolist()  # one sync
                record = {"distill/loss": loss, "distill/outer_lr": float(sched.get_last_lr()[0]),
                          **dict(zip(("distill/grad_norm", "distill/lr_mean", "distill/lr_min", "distill/lr_max"),
                                     figures))}
            if selection.due(done):
                with stats.timing("validation"):
                    record.update(validate(selection, done, synth, average))
                scores = [f"{v:.4f}{' (average)' if k.endswith('average') else ''}"
                          for k, v in record.items() if k.startswith("val/")]
                log.info("iteration %d: loss %.4f, val acc %s", done, loss, ", ".join(scores))
            if record:
                ctx.tracker.log(record, step=done)
            bar.update(loss=loss, val=selection.best_acc)
            with stats.timing("checkpoint"):
                ctx.checkpoints.step(state, done)

    with stats.timing("validation"):
        if average and selection.every > 0 and not selection.due(d.iterations):
            validate(selection, d.iterations, synth, average)  # the last raw set and its average are candidates too
        kept = selection.finish(synth, d.iterations, final_checked=average is not None)
    metrics = {"distill/kept_average": float(selection.best_source == "average")} if average else {}
    metrics.update(stats.metrics(d.iterations))
    return Distilled(synth=synth, iterations=d.iterations, seconds=stats.elapsed(), final_loss=stats.loss,
                     kept_iteration=kept, metrics=metrics)


def finite_loss(meta: MetaGradient, it: int, d) -> float:
    """The step's loss as a float (the one sync of a step); a RunError when it is not finite."""
    loss = meta.loss
    if not math.isfinite(loss):
        raise RunError(f"the distillation loss became {loss} at iteration {it + 1}: lower "
                       f"distill.lr (now {d.lr}) or distill.init_lr (now {d.init_lr}), or set "
                       f"distill.clip_grad; the last good checkpoint is kept")
    return loss


def validate(selection: ValidationSelection, done: int, synth, average) -> Dict[str, float]:
    """Validation accuracy of the raw set and, with distill.average, of its running average."""
    record = {"val/acc_mean": selection.check(done, synth)}
    if average:
        with average.applied():
            record["val/acc_average"] = selection.check(done, synth, source="average")
    return record

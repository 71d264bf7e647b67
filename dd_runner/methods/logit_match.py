"""Logit matching for causal language models (`method=logit_match`): learn synthetic embedding sequences
whose next-token distributions match those of real text, with the network fixed (no inner training step).

    1  real sequences of a fixed length: training text with at least distill.seq_len tokens, cut there
    2  synthetic sequences: distill.steps x distill.ipc embedding sequences of seq_len positions
    3  for each outer iteration: a batch of as many real sequences as there are synthetic ones, paired
       in order; the loss is KL(p_model(. | real prefix) || p_model(. | synthetic prefix)) per position,
       averaged over positions, pairs and the sampled networks (init=random samples per iteration)
    4  Adam on the synthetic embeddings only (distill.lr, distill.betas; StepLR; distill.clip_grad)
    5  held-out KL on validation sequences every eval.every iterations keeps the best set (eval.select)

The result is written like every other method's (distilled.safetensors, distilled_text.csv) with, as
targets, the model's most likely next token at every synthetic position; `distilled_dataset.csv` lists
those tokens decoded, one synthetic sequence per row. metrics.json gets `logit_match/val_kl`,
`test/kl` and `baselines/random_real/kl` (random training sequences in place of the synthetic ones), and
the shared protocol then measures the perplexity of networks trained on the set (lm_report).
"""

from __future__ import annotations

import logging
import math
import statistics
from typing import Sequence

import torch
import torch.nn.functional as F

from dd_runner.context import Distilled, LoopStats, RunContext
from dd_runner.core.errors import RunError
from dd_runner.core.progress import progress
from dd_runner.core.seeding import generator
from dd_runner.data.bundle import Split
from dd_runner.data.stream import RealBatches
from dd_runner.methods.loop import decay_period
from dd_runner.models.learner import Params
from dd_runner.synthetic.build import make_synthetic
from dd_runner.synthetic.text_view import write_csv

log = logging.getLogger(__name__)


def fixed_length(split: Split, length: int) -> Split:
    """The sequences with at least `length` tokens, cut to exactly `length` (no padding left)."""
    keep = split.select(torch.nonzero(split.mask.sum(1) >= length).flatten())
    return Split(inputs=keep.inputs[:, :length], mask=torch.ones_like(keep.inputs[:, :length]))


def pair_kl(learner, theta: Params, x: torch.Tensor, real: Split) -> torch.Tensor:
    """Per-token KL(p(. | real) || p(. | synthetic)) of paired sequences (the real side is a constant)."""
    with torch.no_grad():
        target = learner.next_token_log_probs(theta, input_ids=real.inputs, attention_mask=real.mask)
    log_q = learner.next_token_log_probs(theta, inputs_embeds=x)
    return F.kl_div(log_q, target, log_target=True, reduction="none").sum(-1).mean()


@torch.no_grad()
def held_out_kl(learner, nets: Sequence[Params], x: torch.Tensor, split: Split) -> float:
    """Mean KL of the synthetic sequences against consecutive batches of held-out sequences."""
    n = min(len(x), len(split))
    values = [pair_kl(learner, theta, x[:n], split.select(torch.arange(i, i + n)).to(learner.device)).item()
              for theta in nets for i in range(0, len(split) - n + 1, n)]
    return statistics.fmean(values)


class KLSelection:
    """The synthetic data with the lowest held-out KL so far (checkpointed with the run)."""

    def __init__(self, data: torch.Tensor):
        self.best_kl, self.best_iteration, self.best_data = math.inf, 0, data.detach().clone()

    def offer(self, kl: float, iteration: int, data: torch.Tensor) -> None:
        if kl < self.best_kl:
            self.best_kl, self.best_iteration, self.best_data = kl, iteration, data.detach().clone()

    def state_dict(self) -> dict:
        return {"best_kl": self.best_kl, "best_iteration": self.best_iteration, "best_data": self.best_data}

    def load_state_dict(self, state: dict) -> None:
        self.best_kl, self.best_iteration = float(state["best_kl"]), int(state["best_iteration"])
        self.best_data = state["best_data"].to(self.best_data)


def logit_match(ctx: RunContext) -> Distilled:
    cfg, d, e, learner = ctx.cfg, ctx.cfg.distill, ctx.cfg.eval, ctx.learner
    synth = make_synthetic(cfg, ctx.data, learner, cfg.seed)                                   # 2
    # No inner step, so no step size is learned: the set is judged, like every set without learned lrs, at
    # the fixed lr of eval.lr_grid that is best on validation (not at distill.init_lr, which it never moved).
    synth.raw_lrs.requires_grad_(False)
    count, S = synth.steps * synth.examples_per_step, d.seq_len
    pools = {role: fixed_length(getattr(ctx.data, role), S) for role in ("train", "val", "test")}  # 1
    if len(pools["train"]) < count:
        raise RunError(f"only {len(pools['train'])} training sequences have distill.seq_len={S} tokens, fewer than the "
                       f"{count} synthetic ones: lower distill.seq_len or distill.steps x distill.ipc")
    opt = torch.optim.Adam([synth.data], lr=d.lr, betas=tuple(d.betas))                       # 4
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=decay_period(d),
                                            gamma=d.decay_factor)
    batches = RealBatches(pools["train"], count, cfg.seed, ctx.device)
    val_nets = ctx.inits.eval_nets(e.val_nets, purpose="val")
    every = e.every if e.every is not None else max(1, d.iterations // 10)
    selection, stats = KLSelection(synth.data), LoopStats()
    state = {"synth": synth, "optimizer": opt, "scheduler": sched, "batches": batches, "selection": selection,
             "stats": stats}
    first = ctx.checkpoints.restore(state, allow_config_change=ctx.resuming)
    if first == 0:
        ctx.checkpoints.save(state, 0)

    def flat() -> torch.Tensor:
        return synth.data.view(count, S, -1)

    with ctx.checkpoints.stop_signals(), progress("logit matching", total=d.iterations, completed=first) as bar:
        for it in range(first, d.iterations):
            real = batches.next()                                                              # 3
            thetas = ctx.inits.train_nets(it, d.sample_nets)
            objective = sum(pair_kl(learner, theta, flat(), real) for theta in thetas) / len(thetas)
            stats.loss = float(objective.detach())
            if not math.isfinite(stats.loss):
                raise RunError(f"the logit-matching loss became {stats.loss} at iteration {it + 1}: lower distill.lr "
                               f"(now {d.lr}); the last good checkpoint is kept")
            opt.zero_grad(set_to_none=True)
            objective.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_([synth.data], d.clip_grad or math.inf)
            opt.step()
            sched.step()
            done, record = it + 1, {}
            if done % cfg.logger.log_every == 0 or done == d.iterations:
                record = {"distill/loss": stats.loss, "distill/grad_norm": float(grad_norm)}
            if every > 0 and (done % every == 0 or done == d.iterations):                      # 5
                record["val/kl"] = held_out_kl(learner, val_nets, flat().detach(), pools["val"])
                selection.offer(record["val/kl"], done, synth.data)
            if record:
                ctx.tracker.log(record, step=done)
            bar.update(loss=stats.loss, val=selection.best_kl if math.isfinite(selection.best_kl) else None)
            ctx.checkpoints.step(state, done)

    kept = d.iterations
    if e.select == "best" and every > 0:
        synth.data.data.copy_(selection.best_data)
        kept = selection.best_iteration
    test_nets = ctx.inits.eval_nets(e.nets)
    metrics = {"logit_match/val_kl": selection.best_kl,
               "test/kl": held_out_kl(learner, test_nets, flat().detach(), pools["test"])}
    baseline = learner.to_synthetic_space(pools["train"].select(
        torch.randperm(len(pools["train"]), generator=generator(cfg.seed, "baselines"))[:count]).to(ctx.device))
    metrics["baselines/random_real/kl"] = held_out_kl(learner, test_nets, baseline, pools["test"])
    log.info("logit matching: held-out KL %.4f (random real sequences %.4f)", metrics["test/kl"],
             metrics["baselines/random_real/kl"])
    predicted = set_predicted_targets(synth, learner, test_nets[0])
    write_csv(ctx.out / "distilled_dataset.csv", ["sequence", "text"],
              [[i, ctx.data.tokenizer.decode(ids)] for i, ids in enumerate(predicted.view(count, S).tolist())])
    return Distilled(synth=synth, iterations=d.iterations, seconds=stats.elapsed(), final_loss=stats.loss,
                     kept_iteration=kept, metrics=metrics)


@torch.no_grad()
def set_predicted_targets(synth, learner, theta: Params) -> torch.Tensor:
    """Hard targets = the model's most likely next token at every synthetic position; returns their ids."""
    data = synth.data.detach()
    ids = learner.next_token_log_probs(theta, inputs_embeds=data.flatten(0, 1)).argmax(-1).view(data.shape[:-1])
    synth.labels.data.copy_(F.one_hot(ids, synth.labels.shape[-1]).to(synth.labels))
    return ids

"""Model selection during distillation: validation accuracy every `eval.every` iterations on networks
reserved for validation, keeping the best synthetic set (`eval.select=best`) or the last one. Candidates
may come from several sources at one iteration (the raw set and its running average, `distill.average`)."""

from __future__ import annotations

import copy
import logging
import statistics

import torch

from dd_runner.eval.protocol import accuracies, make_augment_each, make_schedule

log = logging.getLogger(__name__)


class ValidationSelection:
    def __init__(self, ctx, synth):
        e = ctx.cfg.eval
        self.ctx = ctx
        self.every = e.every if e.every is not None else max(1, ctx.cfg.distill.iterations // 10)
        self.keep_best = e.select == "best"
        self.nets = ctx.inits.eval_nets(e.val_nets, purpose="val")
        self.augment = make_augment_each(ctx.cfg)
        self.best_acc, self.best_iteration, self.best_source = -1.0, 0, "raw"
        self.best_state = copy.deepcopy(synth.state_dict())

    def due(self, iteration: int) -> bool:
        return self.every > 0 and iteration % self.every == 0

    def check(self, iteration: int, synth, source: str = "raw") -> float:
        """Validation accuracy of the current set (iteration counts completed outer steps); `source` names
        where its values come from (raw | average)."""
        e = self.ctx.cfg.eval
        with torch.no_grad():  # the evaluation schedule, with the set's own step sizes (no lr tuning here)
            lrs = synth.lrs().detach()
            schedule = make_schedule(e, self.ctx.cfg.seed, synth.data.detach(), synth.all_targets().detach(),
                                     synth.epochs, lrs=lrs, lr=float(lrs[0]), teacher=synth.teacher,
                                     extras=synth.all_extras(), augment=self.augment)  # extras: attention labels
        accs = accuracies(self.ctx.learner, self.nets, schedule, self.ctx.data.val, e.batch_size)
        acc = statistics.fmean(accs)
        if self.ctx.snapshots is not None and source == "raw":  # eval.snapshots: the set at this point
            self.ctx.snapshots.record(iteration, synth, acc)
        if acc > self.best_acc:
            self.best_acc, self.best_iteration, self.best_source = acc, iteration, source
            self.best_state = copy.deepcopy(synth.state_dict())
        return acc

    def state_dict(self) -> dict:
        return {"best_acc": self.best_acc, "best_iteration": self.best_iteration, "best_source": self.best_source,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_acc, self.best_iteration = float(state["best_acc"]), int(state["best_iteration"])
        self.best_source = str(state.get("best_source", "raw"))
        self.best_state = dict(state["best_state"])

    def finish(self, synth, iterations: int, final_checked: bool = False) -> int:
        """Score the final set (unless `final_checked`), then keep the best one if asked to; returns the
        iteration of the set kept."""
        if self.every > 0 and iterations % self.every != 0 and not final_checked:
            self.check(iterations, synth)
        if self.keep_best and (self.best_iteration, self.best_source) != (iterations, "raw") and self.every > 0:
            log.info("keeping the distilled set of iteration %d%s (val acc %.4f)", self.best_iteration,
                     " (running average)" if self.best_source == "average" else "", self.best_acc)
            synth.load_state_dict(self.best_state)
            return self.best_iteration
        return iterations

"""The results of a run as people read them: the console table (a row per set and baseline, a column per
architecture with eval.models) and the W&B table, each saying which protocol produced it."""

from __future__ import annotations

import sys
from typing import Dict, List

from rich import get_console
from rich.console import Console

from dd_runner.core.progress import print_table, results_table
from dd_runner.eval.cross_arch import arch_columns, random_init_note
from dd_runner.eval.judge import Row
from dd_runner.eval.protocol import lr_choice

STATS = ("acc_mean", "acc_std", "n_nets", "lr")


def protocol_text(cfg) -> str:
    """One line naming how the evaluation networks were trained and how many there were."""
    e = cfg.eval
    if e.schedule == "train":
        how = (f"eval.schedule=train: {e.train_epochs} epochs of SGD (batch {e.train_batch}, momentum "
               f"{e.train_momentum}, {lr_choice(e)}, /10 halfway)")
    else:
        how = "eval.schedule=distilled: the set's own steps x epochs, learned lrs (else a tuned one)"
    nets = "1 fixed theta_0" if cfg.init.mode == "fixed" else f"{e.nets} unseen inits"
    return f"protocol: {how}; eval.augment={e.augment}; {nets}"


def show_results(ctx, synth, rows: List[Row], metrics: Dict[str, float]) -> None:
    """Print the results table and what the run cost, and log the table to W&B."""
    cfg = ctx.cfg
    lm = ctx.data.task == "language_modeling"
    archs = arch_columns(rows, cfg.model.name)
    caption = "; ".join(filter(None, [protocol_text(cfg), random_init_note(ctx),
                                      f"{', '.join(archs)}: {cfg.eval.nets} random inits each, own tuned lr"
                                      + ("" if cfg.eval.cross_baselines else " (baselines: eval.cross_baselines=true)")
                                      if archs else ""]))
    title = (f"{cfg.dataset.name} x {cfg.model.name}, init={cfg.init.mode}, labels={cfg.labels.type}: "
             f"{synth.steps} steps x {synth.epochs} epochs of {synth.examples_per_step} examples")
    console = get_console() if sys.stdout.isatty() else Console(width=200)  # a log file gets whole rows
    print_table(results_table(rows, title, archs, own=f"{cfg.model.name} (distilled on)", caption=caption), console)
    console.print(cost_text(metrics, ctx.device), soft_wrap=True)
    columns = list(STATS) + (["ppl_mean", "ppl_std"] if lm else [])
    header = ["setting", *columns, *(f"{a}/{c}" for a in archs for c in STATS)]
    table = []
    for name, m in rows:
        other = [m.get("archs", {}).get(a, {}) for a in archs]
        table.append([name, *(_cell(m, c) for c in columns), *(_cell(o, c) for o in other for c in STATS)])
    ctx.tracker.log_table("results", header, table)
    ctx.tracker.summary({"eval/protocol": protocol_text(cfg)})


def cost_text(metrics: Dict[str, float], device) -> str:
    """What the run cost: time per outer iteration and peak memory of distillation and evaluation."""
    memory = "CUDA max allocated" if device.type == "cuda" else "peak RSS"
    parts = []
    if "distill/seconds" in metrics:
        each = f"{metrics['distill/seconds_per_iteration']:.3g} s each"
        if "distill/cpu_seconds_per_iteration" in metrics:  # the loop's own time: validation and checkpoints apart
            each += (f", {metrics['distill/cpu_seconds_per_iteration']:.3g} s CPU; validation "
                     f"{metrics['distill/validation_seconds']:,.0f} s, checkpoints {metrics['distill/checkpoint_seconds']:,.0f} s")
        parts.append(f"distillation {metrics['distill/seconds']:,.0f} s for {metrics['distill/iterations']} iterations "
                     f"({each}), {memory} {metrics['distill/peak_memory_mb']:,.0f} MB")
    if "eval/seconds" in metrics:
        parts.append(f"evaluation {metrics['eval/seconds']:,.0f} s, {memory} {metrics['eval/peak_memory_mb']:,.0f} MB")
    return "cost: " + "; ".join(parts)


def _cell(stats: dict, column: str):
    value = stats.get(column)
    return (str(value) if value is not None else "") if column == "lr" else value

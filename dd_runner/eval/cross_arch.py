"""Cross-architecture evaluation (`eval.models`): the distilled set, and optionally the baselines
(`eval.cross_baselines`), judged on other networks, as the benchmarks report (DC / DSA / DM: MLP, ConvNet,
LeNet, AlexNet, VGG11, ResNet-18).

Each architecture gets `eval.nets` fresh random initialisations, its own fixed lr tuned on the validation
split over `eval.lr_grid`, and the schedule of the run (learned lrs belong to the network they were learned
for, so they are not carried over). A fixed or pretrained theta_0 exists only for the distillation
architecture: elsewhere the set is evaluated from random inits, and the table says so. The distillation
architecture, when listed, reuses the run's own figures. Metrics: `test/<model>/acc_mean`, `_std`, `n_nets`,
`lr`, and `baselines/<name>/<model>/...`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List, NamedTuple, Optional

from omegaconf import OmegaConf

from dd_runner.context import RunContext
from dd_runner.eval.judge import Judge, Row
from dd_runner.eval.protocol import lr_choice, summary
from dd_runner.models import build_learner
from dd_runner.models.inits import InitSampler

log = logging.getLogger(__name__)


class Candidate(NamedTuple):
    """A set judged on every architecture: its metrics prefix, its row in the results table, its data."""

    prefix: str  # "test" for the distilled set, "baselines/<name>" for a baseline
    row: str
    x: object = None  # None: the full_data baseline (ordinary training on the split)
    targets: object = None
    extras: Optional[dict] = None


def judge_on(ctx: RunContext, synth, option: str) -> Judge:
    """A Judge whose networks are `option`'s, drawn at random (whatever the run's init mode)."""
    learner = build_learner(ctx.eval_models[option], ctx.data, ctx.device, ctx.precision, ctx.cfg.distill)
    inits = InitSampler(OmegaConf.create({"mode": "random", "checkpoint": None, "resample": []}), learner, ctx.cfg.seed)
    return Judge(dataclasses.replace(ctx, learner=learner, inits=inits), synth)


def cross_architecture(ctx: RunContext, synth, main: Judge, candidates: List[Candidate]) -> None:
    """Judge `candidates` on every eval.models architecture; adds the figures to main.metrics and each row's
    stats under "archs" ({model: stats}) for the results table."""
    e = ctx.cfg.eval
    rows: Dict[str, dict] = {name: stats for name, stats in main.rows}
    for option in e.models:
        if option == ctx.cfg.model.name:  # the distillation architecture: the run's own figures
            for c in candidates:
                own = {k: v for k, v in rows[c.row].items() if k != "archs"}
                main.metrics.update({f"{c.prefix}/{option}/{k}": v for k, v in own.items() if not isinstance(v, str)})
                rows[c.row].setdefault("archs", {})[option] = own
            continue
        log.info("evaluating on %s (%d random inits, %s)", option, e.nets, lr_choice(e))
        judge = judge_on(ctx, synth, option)
        for c in candidates:
            prefix = f"{c.prefix}/{option}"
            if c.x is None:
                accs = [judge.full_network(i)[1]["test/acc"] for i in range(max(1, e.full_data_nets))]
                judge.record(prefix, c.row, {**summary(accs), "lr": ctx.cfg.train.lr})
                stats = judge.rows[-1][1]
            else:
                stats = judge.judge(prefix, c.row, c.x, c.targets, None, extras=c.extras)
            rows[c.row].setdefault("archs", {})[option] = stats
        main.metrics.update(judge.metrics)


def random_init_note(ctx: RunContext) -> str:
    """What the table says when the other architectures cannot start where the set was distilled from."""
    others = [m for m in ctx.cfg.eval.models if m != ctx.cfg.model.name]
    if not others or ctx.cfg.init.mode == "random":
        return ""
    return f"init={ctx.cfg.init.mode} is {ctx.cfg.model.name}'s: {', '.join(others)} start from random inits"


def arch_columns(rows: List[Row], own: str) -> List[str]:
    """The architectures with a column of their own in the results table (the distillation one has the
    main column)."""
    seen: List[str] = []
    for _, stats in rows:
        seen += [m for m in stats.get("archs", {}) if m != own and m not in seen]
    return seen

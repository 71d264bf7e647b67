"""The memory estimate of dd_runner.runtime.budget beside the measured peaks, on small CPU runs.

The estimate is a lower bound (what the run cannot avoid holding): every measured peak must be at least
as large, or a run that fits could be refused. For each case this distils for a few outer iterations
and evaluates, measuring each phase as `run()` does (dd_runner.core.memory.PeakMemory: the rise of the
peak resident set size over the phase), and prints one Markdown row per case and phase:

    python scripts/memory_estimate.py                 # every case
    python scripts/memory_estimate.py --only unroll   # cases whose name contains 'unroll'

Run it on an otherwise idle machine: other processes do not change a process's own peak RSS, but its
page cache and allocator do (the first case also pays for imports).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import rich
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DD_RUNNER_SHARED_DATA", REPO.parent / "shared" / "data"))
BASE = ["dataset=mnist_offline", "logger=none", "eval.snapshots=false", "eval.baselines=[]", "eval.every=0",
        "distill.iterations=2", "distill.batch_size=256", "eval.nets=4", "eval.val_nets=2", "eval.batch_size=1000"]
# name -> overrides on top of BASE: the engines, the two init modes, and the set's size
CASES = {
    "unroll, fixed init, 10 steps x 3 epochs": ["init=fixed"],
    "unroll, fixed init, 10 per class, 10 steps x 3 epochs": ["init=fixed", "distill.ipc=10"],
    "unroll, 30 steps x 3 epochs": ["init=fixed", "distill.steps=30"],
    "recompute, 30 steps x 3 epochs": ["init=fixed", "distill.steps=30", "distill.engine=recompute"],
    "vmap, random init, 4 nets": ["init=random", "distill.sample_nets=4", "distill.engine=vmap"],
    "vmap_recompute, random init, 4 nets": ["init=random", "distill.sample_nets=4", "distill.engine=vmap_recompute"],
}


def measure(overrides):
    """(estimate per phase, measured rise per phase) in MiB for one case."""
    from hydra import compose, initialize_config_module

    from dd_runner.core.memory import PeakMemory
    from dd_runner.eval.protocol import batchable
    from dd_runner.eval.report import evaluate
    from dd_runner.methods import METHODS
    from dd_runner.run import build_context
    from dd_runner.runtime.budget import estimate, facts_of
    from dd_runner.runtime.checkpoint import Checkpointer
    from dd_runner.runtime.tracking import Tracker

    with initialize_config_module("dd_runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, *overrides])
    with tempfile.TemporaryDirectory() as out:
        checkpoints = Checkpointer(Path(out), cfg, 0)
        ctx = build_context(cfg, Path(out), Tracker(), checkpoints)
        facts = facts_of(cfg, ctx.data, ctx.learner, batchable(ctx.learner))
        est = {phase: sum(p.bytes for p in parts) / 2 ** 20
               for phase, parts in estimate(cfg, facts, ctx.inits.varies).items()}
        memory = PeakMemory(ctx.device)
        memory.start()
        distilled = METHODS.get(cfg.method.name)(ctx)
        measured = {"distillation": memory.peak_mb()}
        memory.start()
        evaluate(ctx, distilled.synth)
        measured["evaluation"] = memory.peak_mb()
    return est, measured


def machine() -> str:
    """'AMD EPYC, 2 cores, 23 GB' (Linux), else the platform's name and core count."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
        return f"{name}, {os.cpu_count()} cores, {memory / 1e6:.0f} GB"
    except (OSError, StopIteration, ValueError):
        return f"{platform.machine()}, {os.cpu_count()} cores"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    args = parser.parse_args(argv)
    os.environ.setdefault("DD_RUNNER_SHARED_DATA", str(SHARED))
    torch.set_num_threads(1)
    rich.reconfigure(stderr=True)  # progress bars to stderr: stdout is the table alone
    print(f"{datetime.date.today()}, {machine()}, torch {torch.__version__}, one thread; "
          f"`python scripts/memory_estimate.py{' --only ' + args.only if args.only else ''}`; every case: "
          f"{' '.join(BASE)}\n")
    print("| case | phase | estimate (MiB, lower bound) | measured peak rise (MiB) | measured / estimate |")
    print("| --- | --- | --- | --- | --- |")
    below = 0
    for name, overrides in CASES.items():
        if args.only not in name:
            continue
        start = time.perf_counter()
        est, measured = measure(overrides)
        for phase in est:
            ratio = measured[phase] / est[phase] if est[phase] else float("inf")
            below += measured[phase] < est[phase]
            print(f"| {name} ({' '.join(overrides)}) | {phase} | {est[phase]:,.1f} | {measured[phase]:,.1f} | "
                  f"{ratio:,.1f}x |", flush=True)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", file=sys.stderr)
    print(f"\n{below} phase(s) measured below their estimate (0 means the estimate held as a lower bound)")
    sys.exit(1 if below else 0)


if __name__ == "__main__":
    main()

"""The `artefacts` section: what snapshots and W&B media at every validation point cost a run.

Three whole small MNIST runs (LeNet, fixed init, 1 step x 3 epochs, validation every `every` iterations,
no baselines), the same but for what is written: no W&B and no snapshots; W&B offline without
snapshots; W&B offline with snapshots (snapshots/<it>.safetensors, the image grid logged at every point,
evolution.png). Each row's note is its extra wall time over the first and over the second.
"""

from __future__ import annotations

import tempfile
import time

VARIANTS = {
    "no W&B, no snapshots": ["logger=none", "eval.snapshots=false"],
    "W&B offline, no snapshots": ["logger=wandb", "logger.mode=offline", "eval.snapshots=false"],
    "W&B offline + snapshots": ["logger=wandb", "logger.mode=offline", "eval.snapshots=true"],
}


def artefact_cases(quick: bool) -> list:
    iterations, every = (100, 10) if quick else (400, 20)
    return [dict(section="artefacts", kind="run", model="lenet", variant=name, iterations=iterations, every=every,
                 T=3, nets=1, precision="fp32", overrides=overrides) for name, overrides in VARIANTS.items()]


def run_case(case: dict) -> dict:
    """A whole dd-run run (distillation, validation, evaluation, artefacts), timed: the fastest of
    `repeats` runs (wall and this process's CPU time; W&B's own service process is not in the CPU time)."""
    runs = [one_run(case) for _ in range(max(1, case.get("repeats", 1)))]
    return {**runs[0], "seconds": min(r["seconds"] for r in runs), "cpu_seconds": min(r["cpu_seconds"] for r in runs),
            "times": [r["seconds"] for r in runs], "cpu_times": [r["cpu_seconds"] for r in runs]}


def one_run(case: dict) -> dict:
    import os

    from hydra import compose, initialize_config_module

    import dd_runner.config  # noqa: F401
    from dd_runner.run import run

    os.environ.setdefault("WANDB_SILENT", "true")
    with tempfile.TemporaryDirectory() as out:
        overrides = ["dataset=mnist_offline", "model=lenet", "init=fixed", "distill.steps=1", "distill.epochs=3",
                     f"distill.iterations={case['iterations']}", f"eval.every={case['every']}", "eval.baselines=[]",
                     "distill.batch_size=256", f"device={case['device']}", "checkpoint.every=0",
                     f"output_dir={out}", *case["overrides"]]
        with initialize_config_module("dd_runner.conf", version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        start, cpu_start = time.perf_counter(), time.process_time()
        metrics = run(cfg)
        return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
                "acc_mean": metrics["test/acc_mean"], "device_name": cfg.device}


def artefact_ratios(results: list, key: str) -> None:
    rows = {r["variant"]: r for r in results if r.get("kind") == "run" and key in r}
    names = list(VARIANTS)
    for r in rows.values():
        notes = [f"{100 * (r[key] / rows[b][key] - 1):+.1f}% vs {b}" for b in names[:2] if b in rows and rows[b] is not r
                 and names.index(b) < names.index(r["variant"])]
        r["note"] = "; ".join(notes) or "reference"


def describe_run(r: dict) -> tuple:
    return r["section"], r["model"], r["variant"], f"{r['iterations']} it, val every {r['every']}"

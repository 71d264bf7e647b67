"""`run(cfg) -> metrics`: one job, from a composed config to the files in its run directory.

config -> data -> learner -> synthetic set (method) -> evaluation -> artefacts. `dd-run` is a thin Hydra
wrapper around this function; tests and notebooks call it with a config from Hydra's compose API.
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from dd_runner.artefacts import save_distilled, save_image_grid, save_tensors, write_config, write_json
from dd_runner.config.validate import validate
from dd_runner.context import RunContext
from dd_runner.data import load_data
from dd_runner.device import Precision, resolve_device
from dd_runner.inits import InitSampler
from dd_runner.models import build_learner
from dd_runner.progress import print_table, results_table
from dd_runner.seeding import derive_seed, seed_everything
from dd_runner.tracking import make_tracker

log = logging.getLogger(__name__)


def hydra_job() -> Tuple[Optional[Path], Optional[str], Optional[str]]:
    """(output dir, sweep group, job name) when running under Hydra, else Nones."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, None, None
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    group = Path(hc.sweep.dir).name if multirun else None
    name = hc.job.override_dirname or "defaults"
    return Path(hc.runtime.output_dir), group, (f"{hc.job.num}-{name}" if multirun else name)


def run(cfg, output_dir: Optional[str] = None) -> Dict[str, float]:
    validate(cfg)
    hydra_dir, group, name = hydra_job()
    out = Path(output_dir or cfg.output_dir or hydra_dir or
               Path("outputs/runs") / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f"))
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    precision = Precision(cfg.precision, device)
    tracker = make_tracker(cfg, out, group, name or f"{cfg.dataset.name}-{cfg.model.name}-s{cfg.seed}")
    try:
        write_config(out / "config.yaml", cfg)
        data = load_data(cfg.dataset, cfg.model)
        learner = build_learner(cfg.model, data, device, precision)
        ctx = RunContext(cfg, out, device, precision, data, learner, inits=None, tracker=tracker)
        log.info("run directory: %s (device %s, precision %s)", out, device, cfg.precision)
        metrics = run_train(ctx) if cfg.mode == "train" else run_distill(ctx)
        write_json(out / "metrics.json", metrics)  # written last: its presence marks a complete run
        tracker.summary(metrics)
        tracker.finish(0)
        return metrics
    except BaseException:
        tracker.finish(1)
        raise


def run_distill(ctx: RunContext) -> Dict[str, float]:
    from dd_runner.eval.report import evaluate
    from dd_runner.methods import METHODS

    cfg = ctx.cfg
    ctx.inits = InitSampler(cfg.init, ctx.learner, cfg.seed)
    distilled = METHODS.get(cfg.method.name)(ctx)
    synth = distilled.synth
    save_distilled(ctx.out / "distilled.safetensors", cfg, ctx.data, synth)
    if ctx.data.modality == "image":
        save_image_grid(ctx.out / "images.png", synth, ctx.data)
        ctx.tracker.log_image("distilled/images", ctx.out / "images.png", caption=f"{cfg.dataset.name} distilled")

    start = time.perf_counter()
    metrics, rows = evaluate(ctx, synth)
    metrics.update({
        "distill/seconds": distilled.seconds, "distill/iterations": distilled.iterations,
        "distill/final_loss": distilled.final_loss, "distill/best_iteration": distilled.best_iteration,
        "eval/seconds": time.perf_counter() - start, "seed": cfg.seed,
    })
    print_table(results_table(rows, f"{cfg.dataset.name} x {cfg.model.name}, init={cfg.init.mode}, "
                                    f"labels={cfg.labels.type}: {synth.num_steps} steps of "
                                    f"{synth.examples_per_step} examples"))
    ctx.tracker.log_table("results", ["setting", "acc_mean", "acc_std", "n_nets", "lr"],
                          [[n, m["acc_mean"], m["acc_std"], m["n_nets"], str(m.get("lr", ""))] for n, m in rows])
    ctx.tracker.log({k: v for k, v in metrics.items() if k.startswith(("test/", "baselines/"))})
    return metrics


def run_train(ctx: RunContext) -> Dict[str, float]:
    """Ordinary training on the full training split: the ceiling, and a checkpoint for init=pretrained."""
    from dd_runner.eval.report import full_data_training

    cfg = ctx.cfg
    theta0 = ctx.learner.draw(derive_seed(cfg.seed, "theta0"))  # the fixed-init theta_0 of the same seed
    params, result = full_data_training(ctx, theta0, cfg.seed)
    path = ctx.out / "model.safetensors"
    save_tensors(path, ctx.learner.as_dict(params), {"format": "dd-runner/model", "model": cfg.model.name,
                                                      "dataset": cfg.dataset.name, "seed": str(cfg.seed)})
    log.info("test accuracy %.4f (val %.4f, epoch %d); checkpoint: %s (use init=pretrained init.checkpoint=%s)",
             result["test/acc"], result["val/acc"], result["epoch"], path, path)
    ctx.tracker.log(result)
    return {**result, "seed": cfg.seed}

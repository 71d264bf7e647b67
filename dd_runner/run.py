"""`run(cfg) -> metrics`: one job, from a composed config to the files in its run directory.

config -> data -> learner -> synthetic set (method) -> evaluation -> artefacts. `dd-run` is a thin Hydra
wrapper around this function; tests and notebooks call it with a config from Hydra's compose API.
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from dd_runner.config.model_options import model_config
from dd_runner.config.validate import validate
from dd_runner.config.validate_numbers import check_against_data
from dd_runner.context import RunContext
from dd_runner.core.allocator import configure as configure_allocator
from dd_runner.core.device import Precision, configure_backends, resolve_device
from dd_runner.core.errors import RunError
from dd_runner.core.files import save_tensors, write_json
from dd_runner.core.memory import PeakMemory
from dd_runner.core.seeding import derive_seed, seed_everything
from dd_runner.data import load_data
from dd_runner.eval.protocol import resolve_protocol
from dd_runner.models import build_learner
from dd_runner.models.inits import InitSampler
from dd_runner.runtime.artefacts import add_results, save_distilled, save_image_grid, write_config
from dd_runner.runtime.budget import check_budget, is_out_of_memory, out_of_memory
from dd_runner.runtime.checkpoint import Checkpointer
from dd_runner.runtime.resume import prior_run, resumed_config, wandb_id
from dd_runner.runtime.run_dir import claim_output_dir
from dd_runner.runtime.snapshots import Snapshots, write_evolution
from dd_runner.runtime.tracking import make_tracker

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


def run(cfg, output_dir: Optional[str] = None, resume_overrides: Sequence[str] = ()) -> Dict[str, float]:
    """Run one job. `resume_overrides`: with cfg.resume, the "key=value" changes to apply to the resumed
    run's own config (dd-run passes its command-line overrides)."""
    explicit_resume = bool(cfg.resume)
    if explicit_resume:
        cfg = resumed_config(cfg, resume_overrides)
    validate(cfg)
    resolve_protocol(cfg)  # eval.augment, eval.train_epochs: recorded in config.yaml as they ran
    hydra_dir, group, name = hydra_job()
    out = Path(output_dir or cfg.output_dir or hydra_dir or
               Path("outputs/runs") / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f"))
    prior = prior_run(out, cfg, explicit_resume) if out.is_dir() else {}
    if "metrics" in prior:
        log.info("%s already holds this finished run (metrics.json): nothing to do", out)
        return prior["metrics"]
    claim_output_dir(out, "resume" if explicit_resume else "output_dir")  # not a file, nobody else's files, writable
    seed_everything(cfg.seed)
    configure_backends(cfg.deterministic)
    log.info("host allocator: %s", configure_allocator(cfg.get("allocator", "auto")))  # before data and model exist
    resolve_device(cfg.device)  # fail on device=cuda without CUDA before anything else starts
    tracker = make_tracker(cfg, out, group, name or f"{cfg.dataset.name}-{cfg.model.name}-s{cfg.seed}",
                           run_id=wandb_id(prior))
    checkpoints = Checkpointer(out, cfg, cfg.checkpoint.every, extra={"wandb_id": tracker.run_id or ""})
    if cfg.logger.get("log_checkpoints"):
        checkpoints.on_save = tracker.log_checkpoint
    try:
        write_config(out / "config.yaml", cfg)
        ctx = build_context(cfg, out, tracker, checkpoints, explicit_resume)
        check_budget(ctx)  # a budget that cannot fit in memory: one line now, not an out-of-memory error later
        log.info("run directory: %s (device %s, precision %s)", out, ctx.device, cfg.precision)
        metrics = MODES[cfg.mode](ctx)
        (out / "failure.json").unlink(missing_ok=True)  # from an earlier attempt this run recovered from
        write_json(out / "metrics.json", metrics)  # written last: its presence marks a complete run
        tracker.summary(metrics)
        tracker.finish(0)
        return metrics
    except BaseException as e:
        # out of memory: the remedies of this method and engine, not generic ones (runtime/budget.py)
        failure = RunError(out_of_memory(cfg, resolve_device(cfg.device).type == "cuda")) if is_out_of_memory(e) else e
        record_failure(out, failure, checkpoints)
        tracker.finish(1)
        if failure is e:
            raise
        raise failure from e


def build_context(cfg, out: Path, tracker, checkpoints, resuming: bool = False) -> RunContext:
    """Data, learner and init sampler of a run: everything a method and the evaluation need."""
    resolve_protocol(cfg)  # (idempotent) for callers that build a context without run()
    device = resolve_device(cfg.device)
    precision = Precision(cfg.precision, device)
    data = load_data(cfg.dataset, cfg.model)
    check_against_data(cfg, data)  # budgets the split cannot fill: one line before anything runs
    learner = build_learner(cfg.model, data, device, precision, cfg.distill)
    if cfg.eval.compile:
        learner.compile_evaluation()
    inits = InitSampler(cfg.init, learner, cfg.seed) if cfg.mode in ("distill", "baselines") else None
    snapshots = Snapshots(cfg, out, data, learner, tracker) if cfg.mode == "distill" and cfg.eval.snapshots else None
    eval_models = {option: model_config(option) for option in cfg.eval.models}  # built from their own YAML
    return RunContext(cfg, out, device, precision, data, learner, inits=inits, tracker=tracker,
                      checkpoints=checkpoints, resuming=resuming, snapshots=snapshots, eval_models=eval_models)


def record_failure(out: Path, error: BaseException, checkpoints) -> None:
    """failure.json beside the last checkpoint: what failed, and where to continue from."""
    try:
        write_json(out / "failure.json", {
            "type": type(error).__name__, "message": str(error), "iteration": checkpoints.iteration,
            "checkpoint": str(checkpoints.path) if checkpoints.exists() else None, "log": str(out / "dd-run.log")})
    except Exception as e:  # a full or unwritable disk must not hide the original error
        log.warning("could not write failure.json: %s", e)


def run_distill(ctx: RunContext) -> Dict[str, float]:
    from dd_runner.eval.report import evaluate
    from dd_runner.methods import METHODS

    cfg = ctx.cfg
    memory = PeakMemory(ctx.device)
    memory.start()
    distilled = METHODS.get(cfg.method.name)(ctx)
    distill_peak = memory.peak_total_mb()
    synth = distilled.synth
    save_distilled(ctx.out / "distilled.safetensors", cfg, ctx.data, synth, ctx.learner, ctx.inits)
    if ctx.data.modality == "text":  # distilled_text.csv: nearest vocabulary tokens of each synthetic embedding
        from dd_runner.synthetic.text_view import save_text_view

        save_text_view(ctx, synth)
    if ctx.snapshots is not None:
        write_evolution(ctx.out, ctx.data, ctx.learner, distilled.kept_iteration)

    start = time.perf_counter()
    memory.start()
    metrics, rows = evaluate(ctx, synth)
    metrics.update({
        "distill/seconds": distilled.seconds, "distill/iterations": distilled.iterations,
        "distill/seconds_per_iteration": distilled.seconds / max(1, distilled.iterations),
        "distill/peak_memory_mb": distill_peak, "eval/peak_memory_mb": memory.peak_total_mb(),
        "distill/final_loss": distilled.final_loss, "distill/kept_iteration": distilled.kept_iteration,
        "eval/seconds": time.perf_counter() - start, "seed": cfg.seed, **distilled.metrics,
    })
    add_results(ctx.out / "distilled.safetensors", cfg, metrics)
    if ctx.data.modality == "image":  # after evaluation: it names the lr the evaluation used
        save_image_grid(ctx.out / "images.png", synth, ctx.data, cfg, metrics)
        ctx.tracker.log_image("distilled/images", ctx.out / "images.png", caption=f"{cfg.dataset.name} distilled")
    ctx.tracker.log({k: metrics[k] for k in ("distill/seconds", "distill/peak_memory_mb", "eval/seconds",
                                             "eval/peak_memory_mb")})  # time and memory per phase
    log_distilled_set(ctx, synth, metrics)
    return report_results(ctx, synth, metrics, rows)


def log_distilled_set(ctx: RunContext, synth, metrics: Dict[str, float]) -> None:
    """W&B: the learned lrs as a line plot, and the set (with theta_0 and its pictures) as an Artifact."""
    from dd_runner.runtime.portable import config_dict

    ctx.tracker.log_lrs("distilled/lrs", synth.lrs().detach().cpu(), synth.epochs)
    files = [ctx.out / name for name in ("distilled.safetensors", "init.safetensors", "images.png", "evolution.png")]
    tested = {k: v for k, v in metrics.items() if k.startswith(("test/", "val/", "baselines/")) and isinstance(v, (int, float))}
    ctx.tracker.log_artifact(files, f"distilled-{ctx.tracker.run_id}", "distilled-dataset", ["latest", "best"],
                             {"config": config_dict(ctx.cfg), "metrics": tested})


def run_baselines(ctx: RunContext) -> Dict[str, float]:
    """`eval.baselines` alone, at the budget distill.* describes, by the same protocol and nets as a distill
    run of the same seed (so its figures equal that run's baselines/* ones): coresets without distilling,
    or one baseline per process when a comparison is spread over machines or sessions."""
    from dd_runner.eval.report import evaluate
    from dd_runner.synthetic.build import make_synthetic

    synth = make_synthetic(ctx.cfg, ctx.data, ctx.learner, ctx.cfg.seed)  # the budget; its data is not used
    start = time.perf_counter()
    memory = PeakMemory(ctx.device)
    memory.start()
    metrics, rows = evaluate(ctx, synth, distilled=False)
    metrics.update({"eval/seconds": time.perf_counter() - start, "eval/peak_memory_mb": memory.peak_total_mb(),
                    "seed": ctx.cfg.seed})
    return report_results(ctx, synth, metrics, rows)


def report_results(ctx: RunContext, synth, metrics: Dict[str, float], rows) -> Dict[str, float]:
    """The results table on the console and W&B, the test and baseline figures as W&B metrics."""
    from dd_runner.eval.results import show_results

    show_results(ctx, synth, rows, metrics)
    ctx.tracker.log({k: v for k, v in metrics.items() if k.startswith(("test/", "baselines/"))})
    return metrics


def run_train(ctx: RunContext) -> Dict[str, float]:
    """Ordinary training on the full training split: the ceiling, and a checkpoint for init=pretrained."""
    from dd_runner.eval.full_data import full_data_training

    cfg = ctx.cfg
    theta0 = ctx.learner.draw(derive_seed(cfg.seed, "theta0"))  # the fixed-init theta_0 of the same seed
    start = time.perf_counter()
    params, result = full_data_training(ctx, theta0)
    result["train/seconds"] = time.perf_counter() - start
    path = ctx.out / "model.safetensors"
    save_tensors(path, ctx.learner.as_dict(params), {"format": "dd-runner/model", "model": cfg.model.name,
                                                      "dataset": cfg.dataset.name, "seed": str(cfg.seed)})
    log.info("test accuracy %.4f (val %.4f, epoch %d); checkpoint: %s (use init=pretrained init.checkpoint=%s)",
             result["test/acc"], result["val/acc"], result["epoch"], path, path)
    ctx.tracker.log(result)
    return {**result, "seed": cfg.seed}


def run_experts(ctx: RunContext) -> Dict[str, float]:
    """Expert trajectories for method=trajectory_matching (see dd_runner.methods.experts)."""
    from dd_runner.methods.experts import train_experts

    metrics = train_experts(ctx)
    ctx.tracker.log(metrics)
    return {**metrics, "seed": ctx.cfg.seed}


MODES = {"distill": run_distill, "baselines": run_baselines, "train": run_train, "experts": run_experts}

"""`dd-run`: the command line. A pre-flight check, then Hydra around `dd_runner.run.run`.

Exit codes: 0 success; 2 configuration error (one line on stderr, before anything runs); 1 runtime
failure (one line; the traceback goes to <run dir>/dd-run.log); 130 / 143 stopped by SIGINT / SIGTERM
after saving a checkpoint. In a multirun a failed job does not stop the sweep; the process exits with the
worst code of its jobs, wherever they ran (dd_runner.sweeps.jobs reads it back from their failure.json).
Under torchrun (`torchrun --nproc_per_node=K -m dd_runner ...`) every rank runs this; see
dd_runner.core.distributed.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import List, Optional, Tuple

import hydra

from dd_runner.config import schema  # noqa: F401  (registers the structured configs)
from dd_runner.core.errors import DDError

log = logging.getLogger("dd_runner")
_worst_exit_code = 0
# The fallback for an out-of-memory error outside a run's own handling; run() names the remedies of the
# method and engine in use (dd_runner.runtime.budget.out_of_memory).
OUT_OF_MEMORY = ("out of memory: use distill.engine=recompute (or a larger distill.recompute_every), "
                 "fewer distill.sample_nets, a smaller distill.vmap_chunk or distill.batch_size")


def describe(error: BaseException) -> Tuple[str, int, bool]:
    """(one-line message, exit code, expected?) for an exception that ended a job."""
    import torch

    if isinstance(error, DDError):
        return str(error), error.exit_code, True
    if isinstance(error, torch.OutOfMemoryError) or (
            isinstance(error, RuntimeError) and "can't allocate memory" in str(error)):
        return f"{'CUDA ' if isinstance(error, torch.OutOfMemoryError) else ''}{OUT_OF_MEMORY}", 1, True
    return f"unexpected {type(error).__name__}: {error} (a bug: please report it with <run dir>/dd-run.log)", 1, False


def _to_log_file(message: str, with_traceback: bool) -> None:
    """Write to the run's log file only: the console gets one line, the file the whole story."""
    exc_info = sys.exc_info() if with_traceback else None
    record = logging.LogRecord("dd_runner", logging.ERROR, __file__, 0, message, None, exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _free_accelerator() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


@hydra.main(version_base="1.3", config_path="pkg://dd_runner.conf", config_name="config")
def hydra_job(cfg) -> Optional[float]:
    """One Hydra job. Returns the validation accuracy, the objective for Hydra sweepers (optuna)."""
    global _worst_exit_code
    from hydra.core.hydra_config import HydraConfig

    from dd_runner.core.distributed import is_main
    from dd_runner.run import run
    from dd_runner.runtime.checkpoint import Interrupted
    from dd_runner.sweeps.jobs import record_exit

    try:
        metrics = run(cfg, resume_overrides=list(HydraConfig.get().overrides.task))
        return metrics.get("val/acc_mean", metrics.get("val/acc"))
    except (Exception, KeyboardInterrupt) as e:
        message, code, expected = describe(e) if not isinstance(e, KeyboardInterrupt) else ("interrupted", 130, True)
        if not expected:  # a bug: show the traceback on the console too
            log.exception("traceback:")
        _to_log_file(f"dd-run: error: {message}", with_traceback=True)
        print(f"dd-run: error: {message}", file=sys.stderr, flush=True)
        _worst_exit_code = max(_worst_exit_code, code)
        if is_main():  # the launching process may be another one (submitit): tell it through the job dir
            record_exit(HydraConfig.get().runtime.output_dir, message, code)
        if isinstance(e, (Interrupted, KeyboardInterrupt)):  # a stop signal ends the whole sweep
            raise SystemExit(code)
    finally:
        _free_accelerator()
    return None


def _with_run_dir(argv: List[str], jobs: List) -> List[str]:
    """A single run's artefacts, logs and Hydra record all go to output_dir / resume when one is set
    (Hydra creates that directory before the job starts, so it is checked here). The directory is the one
    the composed config holds (`jobs`, from the pre-flight check): quotes removed and ${...} resolved, so
    'output_dir="my runs/a,b"' creates my runs/a,b, not a directory named after the quoted string."""
    from dd_runner.cli.command_line import parse, with_overrides
    from dd_runner.runtime.run_dir import claim_output_dir, claim_resume_dir

    cmd = parse(argv)
    if cmd is None or cmd.multirun or cmd.only_shows or len(jobs) != 1:
        return argv
    run_dir = next((o.partition("=")[2].strip("'\"") for o in cmd.overrides if o.startswith("hydra.run.dir=")), None)
    if run_dir is not None:  # not a file, nobody else's files (runtime/run_dir.py), before Hydra writes there
        if "${" not in run_dir:
            claim_output_dir(run_dir, "hydra.run.dir")
        return argv
    cfg = jobs[0]
    key = next((k for k in ("resume", "output_dir") if cfg._get_node(k)._value() is not None), None)
    if key is None:
        return argv
    if "${now:" not in str(cfg._get_node(key)._value()):  # a time-stamped name: Hydra resolves it later
        claim_resume_dir(cfg[key]) if key == "resume" else claim_output_dir(cfg[key], key)
    extra = ["hydra.output_subdir=null"] if key == "resume" else []  # keep the original .hydra record
    return with_overrides(argv, [f"hydra.run.dir=${{{key}}}", *extra])


def main(argv: Optional[List[str]] = None) -> None:
    from dd_runner.cli.command_line import with_overrides
    from dd_runner.config.plugins import optuna_defaults
    from dd_runner.cli.preflight import preflight, shared_hydra_dirs
    from dd_runner.core import distributed
    from dd_runner.sweeps.jobs import last_sweep_exit_code

    argv = sys.argv[1:] if argv is None else argv
    try:
        if "-h" in argv or "--help" in argv:  # ours, not Hydra's: every option and key, read from the schema
            from dd_runner.cli.help import help_for

            print(help_for(argv))
            sys.exit(0)
        jobs = preflight(argv)
        argv = _with_run_dir(argv, jobs)
        argv = with_overrides(argv, optuna_defaults(argv)[len(argv):])  # before any flag, as Hydra wants
        distributed.init_from_env()  # under torchrun: join the other ranks and share one run directory
        if distributed.active():
            argv = shared_hydra_dirs(argv)
    except DDError as e:
        print(f"dd-run: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.argv = [sys.argv[0], *argv]
    try:
        hydra_job()
    finally:
        distributed.shutdown()
    sys.exit(max(_worst_exit_code, last_sweep_exit_code()))

"""`dd-run`: the command line. A pre-flight check, then Hydra around `dd_runner.run.run`.

Exit codes: 0 success; 2 configuration error (one line on stderr, before anything runs); 1 runtime
failure (one line; the traceback goes to <run dir>/dd-run.log). In a multirun a failed job does not stop
the sweep; the process exits with the worst code of its jobs.
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import List, Optional

import hydra

from dd_runner.config import schema  # noqa: F401  (registers the structured configs)
from dd_runner.errors import DDError, RunError

log = logging.getLogger("dd_runner")
_worst_exit_code = 0


def _traceback_to_log_file() -> None:
    """Emit the current exception's traceback to the run's log file only (not the console)."""
    record = logging.LogRecord("dd_runner", logging.ERROR, __file__, 0, "traceback:", None, sys.exc_info())
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _fail(message: str, code: int) -> None:
    global _worst_exit_code
    _worst_exit_code = max(_worst_exit_code, code)
    log.error(message)


def _free_accelerator() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


@hydra.main(version_base="1.3", config_path="pkg://" + "dd_runner.conf", config_name="config")
def hydra_job(cfg) -> Optional[float]:
    """One Hydra job. Returns the validation accuracy, the objective for Hydra sweepers (optuna)."""
    import torch

    from dd_runner.run import run

    try:
        metrics = run(cfg)
        return metrics.get("val/acc_mean", metrics.get("val/acc"))
    except DDError as e:
        _traceback_to_log_file()
        _fail(f"dd-run: error: {e}", e.exit_code)
    except torch.cuda.OutOfMemoryError:
        _traceback_to_log_file()
        _fail(f"dd-run: error: {RunError('CUDA out of memory: use distill.engine=recompute, fewer distill.sample_nets, or a smaller distill.batch_size')}", 1)
    except KeyboardInterrupt:
        _fail("dd-run: interrupted", 130)
        raise
    except Exception:
        log.exception("dd-run: unexpected error (a bug: please report it with the traceback below)")
        _fail("dd-run: failed", 1)
    finally:
        _free_accelerator()
    return None


def main(argv: Optional[List[str]] = None) -> None:
    from dd_runner.config.preflight import preflight

    argv = sys.argv[1:] if argv is None else argv
    try:
        preflight(argv)
    except DDError as e:
        print(f"dd-run: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.argv = [sys.argv[0], *argv]
    hydra_job()
    sys.exit(_worst_exit_code)

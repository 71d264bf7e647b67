"""The jobs of a sweep (`dd-run -m ...`) as they lie on disk, and what the sweep tells its user at the end.

A job directory holds `.hydra/overrides.yaml` (what the job changed); it finished if it holds
`metrics.json` (written last by every run), failed if it holds `failure.json` (written by the job, with
its exit code), and is otherwise incomplete (still running, or killed without a word). A job whose
metrics.json cannot be read (cut short, edited, not JSON) is `unreadable`: reported by name, counted
with the failed ones, never averaged; an unreadable overrides.yaml stops the report (one line naming it),
since the job could not be placed in its setting. This is all
`dd-report` reads, so a sweep can be reported while it runs, after it crashed, or from another machine.

Jobs may run in other processes (hydra/launcher=submitit_local) or on other machines (submitit_slurm),
so their outcome travels through these files, not through memory: `SweepSummary`, a Hydra callback run
by the launching process after the last job, reads them back, prints one line per failed job and sets
the exit code of `dd-run -m` to the worst one.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from hydra.experimental.callback import Callback

from dd_runner.core.errors import DataError, DDError

log = logging.getLogger(__name__)

FAILURE = "failure.json"
METRICS = "metrics.json"
OVERRIDES = Path(".hydra") / "overrides.yaml"
_last_sweep_exit_code = 0


@dataclass
class Job:
    dir: Path
    name: str  # the job directory relative to the sweep directory (its job number)
    overrides: Dict[str, str]  # key -> value as typed on the command line
    metrics: Optional[Dict[str, float]] = None  # metrics.json
    failure: Optional[Dict[str, object]] = None  # failure.json
    unreadable: str = ""  # why metrics.json could not be read (then metrics is None)

    @property
    def status(self) -> str:
        if self.unreadable:
            return "unreadable"
        return "finished" if self.metrics is not None else "failed" if self.failure is not None else "incomplete"

    @property
    def exit_code(self) -> int:
        if self.status == "failed":
            code = self.failure.get("exit_code", 1)
            return int(code) if isinstance(code, int) or str(code).lstrip("-").isdigit() else 1
        return 1 if self.status == "unreadable" else 0

    @property
    def message(self) -> str:
        """Why the job did not finish (failed: its failure.json's message; unreadable: what could not be read)."""
        if self.status == "unreadable":
            return self.unreadable
        return str((self.failure or {}).get("message", "")) if self.status == "failed" else ""

    def describe(self, keys: Optional[Sequence[str]] = None) -> str:
        """The job's overrides (only `keys`, e.g. the swept ones, if given)."""
        return " ".join(f"{k}={v}" for k, v in self.overrides.items() if keys is None or k in keys)


def _read_json(path: Path) -> Optional[dict]:
    """A job's JSON file, None if absent; DataError naming it if unreadable (core.files.read_json)."""
    from dd_runner.core.files import read_json

    return read_json(path) if path.is_file() else None


def _failure(path: Path) -> Optional[dict]:
    """failure.json, None if absent. An unreadable one still marks a failed job: its message says so."""
    try:
        return _read_json(path)
    except DDError as e:
        return {"message": str(e)}


def read_overrides(path: Path) -> Dict[str, str]:
    """key -> value of a job's .hydra/overrides.yaml; DataError naming the file if it is not Hydra's list."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from dd_runner.core.files import read_yaml

    hint = "repair it or move that job directory out of the sweep"
    raw = read_yaml(path, hint=hint)
    if not OmegaConf.is_list(raw):
        raise DataError(f"{path} is not a list of overrides (it holds a {type(raw).__name__}); {hint}")
    try:
        parsed = OverridesParser.create().parse_overrides([str(line) for line in raw])
    except Exception as e:  # Hydra's OverrideParseException
        raise DataError(f"{path} holds an override Hydra cannot parse ({str(e).splitlines()[0][:160]}); {hint}") from None
    return {o.get_key_element().lstrip("+~"): o.get_value_element_as_str() for o in parsed}


def job_number(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def collect(sweep_dir: Path) -> List[Job]:
    """Every job under `sweep_dir` (any depth: a folder of sweeps works too), in job-number order."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    for overrides in sweep_dir.rglob(str(OVERRIDES)):
        job_dir = overrides.parent.parent
        if ".submitit" in job_dir.parts:
            continue
        try:
            metrics, unreadable = _read_json(job_dir / METRICS), ""
        except DDError as e:
            metrics, unreadable = None, str(e)
        jobs.append(Job(job_dir, str(job_dir.relative_to(sweep_dir)), read_overrides(overrides), metrics,
                        _failure(job_dir / FAILURE), unreadable))
    return sorted(jobs, key=lambda j: tuple(job_number(part) for part in Path(j.name).parts))


def swept_keys(jobs: Sequence[Job]) -> List[str]:
    """Override keys whose value differs between jobs (or that some jobs lack), in command-line order."""
    keys: Dict[str, None] = {}
    for job in jobs:
        keys.update(dict.fromkeys(job.overrides))
    return [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]


def record_exit(job_dir: Path, message: str, exit_code: int) -> None:
    """Add the job's exit code to its failure.json (or write one: the job may have failed before its run
    directory was set up), so that the launching process can tell how it ended."""
    from dd_runner.core.files import write_json

    path = Path(job_dir) / FAILURE
    record = _failure(path) or {"message": message}
    record["exit_code"] = exit_code
    try:
        write_json(path, record)
    except Exception as e:  # a full or unwritable disk must not hide the original error
        log.warning("could not record the exit code in %s: %s", path, e)


def last_sweep_exit_code() -> int:
    """The worst exit code of the jobs of the last sweep this process launched (0 if none failed)."""
    return _last_sweep_exit_code


class SweepSummary(Callback):
    """After the last job of a multirun: one line per failed or incomplete job, the exit code, and the
    command that reports the sweep. Registered in conf/config.yaml (hydra.callbacks)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        # Printed, not logged: after the jobs, Hydra leaves logging set up for the last job (its log file).
        global _last_sweep_exit_code
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = collect(sweep_dir)
        swept = swept_keys(jobs)
        for job in jobs:
            if job.status in ("failed", "unreadable"):
                print(f"dd-run: job {job.name} ({job.describe(swept)}) failed with exit code {job.exit_code}: "
                      f"{job.message}", file=sys.stderr)
            elif job.status == "incomplete":
                print(f"dd-run: job {job.name} ({job.describe(swept)}) did not finish (no {METRICS}, no {FAILURE})",
                      file=sys.stderr)
        finished = sum(j.status == "finished" for j in jobs)
        print(f"sweep {sweep_dir}: {len(jobs)} jobs, {finished} finished; report: dd-report {sweep_dir}", flush=True)
        worst = max([j.exit_code for j in jobs] + [1 if finished < len(jobs) else 0])
        _last_sweep_exit_code = max(_last_sweep_exit_code, worst)

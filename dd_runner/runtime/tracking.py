"""Experiment tracking: Weights & Biases (`logger=wandb`, offline unless logger.mode=online) or nothing.

One W&B run per Hydra job: in a multirun the jobs of a sweep share a group (the sweep directory's
name), `job_type` is the method, and every job calls finish() with its exit code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class Tracker:
    """Logs nothing. The interface every tracker implements."""

    run_id: Optional[str] = None

    def log(self, metrics: Dict[str, Any], step: Optional[int] = None) -> None: ...

    def log_image(self, key: str, path: Path, caption: str = "") -> None: ...

    def log_table(self, key: str, columns: List[str], rows: List[List[Any]]) -> None: ...

    def summary(self, metrics: Dict[str, Any]) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...


class WandbTracker(Tracker):
    def __init__(self, cfg, out: Path, group: Optional[str], name: str, run_id: Optional[str] = None):
        import wandb

        self._wandb = wandb
        lc = cfg.logger
        self.run = wandb.init(
            id=run_id, resume="allow" if run_id else None,  # a resumed dd-run continues its W&B run
            project=lc.project, entity=lc.entity, mode=lc.mode, dir=str(out), group=lc.group or group,
            job_type=cfg.method.name, name=name, tags=list(lc.tags),
            config=OmegaConf.to_container(cfg, resolve=True),
            settings=wandb.Settings(console="off", quiet=True),
        )
        self.run_id = self.run.id
        log.info("W&B run %s (%s mode) in %s", self.run.id, lc.mode, out / "wandb")

    def log(self, metrics, step=None):
        self.run.log(dict(metrics), step=step)

    def log_image(self, key, path, caption=""):
        self.run.log({key: self._wandb.Image(str(path), caption=caption)})

    def log_table(self, key, columns, rows):
        self.run.log({key: self._wandb.Table(columns=columns, data=rows)})

    def summary(self, metrics):
        for k, v in metrics.items():
            self.run.summary[k] = v

    def finish(self, exit_code=0):
        self.run.finish(exit_code=exit_code)


def make_tracker(cfg, out: Path, group: Optional[str], name: str, run_id: Optional[str] = None) -> Tracker:
    from dd_runner.core.distributed import is_main

    if cfg.logger.name == "none" or cfg.logger.mode == "disabled" or not is_main():  # torchrun: rank 0 logs
        return Tracker()
    return WandbTracker(cfg, out, group, name, run_id)

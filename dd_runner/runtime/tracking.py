"""Experiment tracking: Weights & Biases (`logger=wandb`, offline unless logger.mode=online) or nothing.

One W&B run per Hydra job: in a multirun the jobs of a sweep share a group (the sweep directory's
name), `job_type` is the method, and every job calls finish() with its exit code.

What a run shows: distillation and validation metrics plotted against the outer iteration (`iteration`,
define_metric; `val/acc_mean` keeps its max in the summary), the set at every validation point under
one media key (runtime/snapshots.py), the learned lr of every unrolled step as a line plot, and the set
itself as an Artifact (type `distilled-dataset`, aliases latest and best). Artifact files are staged as
hard links under `<run dir>/wandb/artifacts/` (policy immutable), so `wandb sync` of an offline run
uploads them from inside the run directory, as logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from dd_runner.core.errors import ConfigError, RunError

log = logging.getLogger(__name__)
ITERATION = "iteration"  # the x axis of distillation curves: completed outer iterations


class Tracker:
    """Logs nothing. The interface every tracker implements."""

    run_id: Optional[str] = None

    def log(self, metrics: Dict[str, Any], step: Optional[int] = None) -> None: ...

    def log_image(self, key: str, image, caption: str = "", step: Optional[int] = None) -> None:
        """`image`: a file path or an (H, W, 3) uint8 array."""

    def log_table(self, key: str, columns: List[str], rows: List[List[Any]], step: Optional[int] = None) -> None: ...

    def log_lrs(self, key: str, lrs, epochs: int) -> None:
        """The learned step size of every unrolled step, as a line plot against the step."""

    def log_artifact(self, files: List[Path], name: str, kind: str, aliases: List[str], metadata: Dict[str, Any]) -> None: ...

    def log_checkpoint(self, path: Path, iteration: int) -> None: ...

    def summary(self, metrics: Dict[str, Any]) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...


def has_credentials() -> bool:
    """Whether W&B can authenticate without asking: WANDB_API_KEY (or an identity token file), or the entry
    `wandb login` writes to ~/.netrc ($NETRC) for the server ($WANDB_BASE_URL, default api.wandb.ai)."""
    import netrc
    import os
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_credentials(cfg) -> None:
    """logger.mode=online without credentials: one line before anything runs. (Without it W&B would ask for
    a key on a terminal nobody watches, or fail after the data and model were loaded.)"""
    lc = cfg.logger
    if lc.name == "wandb" and lc.mode == "online" and not has_credentials():
        raise ConfigError("logger.mode=online needs W&B credentials: run `wandb login` or set WANDB_API_KEY, "
                          "or use logger.mode=offline (upload later with `wandb sync`)")


class WandbTracker(Tracker):
    def __init__(self, cfg, out: Path, group: Optional[str], name: str, run_id: Optional[str] = None):
        import wandb

        self._wandb = wandb
        lc = cfg.logger
        try:
            self.run = wandb.init(
                id=run_id, resume="allow" if run_id else None,  # a resumed dd-run continues its W&B run
                project=lc.project, entity=lc.entity, mode=lc.mode, dir=str(out), group=lc.group or group,
                job_type=cfg.method.name, name=name, tags=list(lc.tags),
                config=OmegaConf.to_container(cfg, resolve=True),
                settings=wandb.Settings(console="off", quiet=True),
            )
        except wandb.errors.Error as e:  # refused key, no network, unknown entity: one line, not W&B's traceback
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise RunError(f"cannot start the W&B run in logger.mode={lc.mode} ({type(e).__name__}: {reason}); check "
                           "the network and `wandb login`, or use logger.mode=offline") from None
        self.run_id = self.run.id
        self.staging = out / "wandb" / "artifacts"
        # distillation curves against the outer iteration; val/acc_mean's summary is its best value
        self.run.define_metric(ITERATION)
        for pattern in ("distill/*", "val/*", "distilled/evolution"):
            self.run.define_metric(pattern, step_metric=ITERATION)
        self.run.define_metric("val/acc_mean", step_metric=ITERATION, summary="max")
        log.info("W&B run %s (%s mode) in %s", self.run.id, lc.mode, out / "wandb")

    def log(self, metrics, step=None):
        self.run.log({**metrics, **({ITERATION: step} if step is not None else {})}, step=step)

    def log_image(self, key, image, caption="", step=None):
        self.log({key: self._wandb.Image(str(image) if isinstance(image, Path) else image, caption=caption)}, step)

    def log_table(self, key, columns, rows, step=None):
        self.log({key: self._wandb.Table(columns=columns, data=rows)}, step)

    def log_lrs(self, key, lrs, epochs):
        values = [float(v) for v in lrs]
        per_epoch = max(1, len(values) // max(1, epochs))
        table = self._wandb.Table(columns=["step", "lr", "epoch"], data=[[t, v, t // per_epoch] for t, v in enumerate(values)])
        self.run.log({key: self._wandb.plot.line(table, "step", "lr", title="learned lr per unrolled step")})

    def _stage(self, name: str, files: List[Path], version: str = "") -> List[Path]:
        """Hard links (or copies) of `files` under the run directory: what the artifact references (each
        logged version in its own folder, so a later one never changes the bytes of an earlier one)."""
        import os
        import shutil

        folder = self.staging / name / version
        folder.mkdir(parents=True, exist_ok=True)
        staged = []
        for f in files:
            target = folder / Path(f).name
            target.unlink(missing_ok=True)
            try:
                os.link(f, target)
            except OSError:  # another file system, or no hard links: a copy
                shutil.copy2(f, target)
            staged.append(target)
        return staged

    def log_artifact(self, files, name, kind, aliases, metadata, version=""):
        artifact = self._wandb.Artifact(name, type=kind, metadata=metadata)
        for f in self._stage(name, [Path(f) for f in files if Path(f).is_file()], version):
            artifact.add_file(str(f), policy="immutable")
        self.run.log_artifact(artifact, aliases=list(aliases))

    def log_checkpoint(self, path, iteration):
        self.log_artifact([path], f"checkpoint-{self.run.id}", "checkpoint", ["latest"], {"iteration": iteration},
                          version=f"iteration-{iteration}")

    def summary(self, metrics):
        for k, v in metrics.items():
            if k != "val/acc_mean":  # its summary is the best validation accuracy of the run (define_metric)
                self.run.summary[k] = v

    def finish(self, exit_code=0):
        self.run.finish(exit_code=exit_code)


def make_tracker(cfg, out: Path, group: Optional[str], name: str, run_id: Optional[str] = None) -> Tracker:
    from dd_runner.core.distributed import is_main

    if cfg.logger.name == "none" or cfg.logger.mode == "disabled" or not is_main():  # torchrun: rank 0 logs
        return Tracker()
    check_credentials(cfg)
    return WandbTracker(cfg, out, group, name, run_id)

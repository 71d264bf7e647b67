"""`dd-report SWEEP --wandb`: the sweep as a W&B report, built as code with `wandb-workspaces`.

The report shows the sweep's runs (the W&B group of its jobs): accuracy against the swept key, a line per
setting of the other swept keys (mean over seeds); the distilled set beside every baseline; and the
evolution of the best job's set (the `distilled/evolution` media of that run, one image per validation
point). Offline (the default), the report's spec is written to `<sweep dir>/wandb_report.json` and the
command to publish it is printed; `--publish` saves it to W&B (network and `wandb login` needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

from dd_runner.core.errors import ConfigError, DataError

SPEC = "wandb_report.json"
MEDIA_KEY = "distilled/evolution"  # runtime/snapshots.py


def _workspaces():
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        raise ConfigError("dd-report --wandb needs the wandb-workspaces package: pip install 'dd-runner[wandb-report]'") from None
    return wr


def _job_config(job) -> dict:
    from omegaconf import OmegaConf

    from dd_runner.core.files import read_yaml

    path = job.dir / "config.yaml"
    return OmegaConf.to_container(read_yaml(path, hint="repair it or move that job out of the sweep")) if path.is_file() else {}


def wandb_run_id(job_dir: Path) -> Optional[str]:
    """The W&B run id of a job, from its run folder name (wandb/offline-run-<time>-<id> or run-<time>-<id>)."""
    runs = sorted((job_dir / "wandb").glob("*run-*-*"))
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def best_job(jobs, metric: str):
    finished = [j for j in jobs if j.status == "finished" and isinstance(j.metrics.get(metric), (int, float))]
    return max(finished, key=lambda j: j.metrics[metric]) if finished else None


def build_report(sweep_dir: Path, jobs, keys: Sequence[str], metric: str, names: Sequence[str], x: Optional[str],
                 entity: Optional[str] = None, project: Optional[str] = None):
    """The wandb-workspaces Report of a sweep (constructed without touching the network)."""
    wr = _workspaces()
    cfg = next((c for c in (_job_config(j) for j in jobs) if c), {})
    logger = cfg.get("logger") or {}
    entity = entity or logger.get("entity") or "<entity>"
    project = project or logger.get("project") or "dd-runner"
    group = logger.get("group") or Path(sweep_dir).name
    sweep_runs = wr.Runset(entity=entity, project=project, name=f"sweep {group}", filters=f"Group == '{group}'")
    others = [k for k in keys if k != x]
    panels: List = []
    if x is not None:
        panels.append(wr.ScatterPlot(title=f"{metric} vs {x}", x=wr.Config(x), y=wr.SummaryMetric(metric)))
        panels.append(wr.LinePlot(title=f"{metric} vs {x}, a line per setting (mean over seeds)", x=wr.Config(x),
                                  y=[wr.SummaryMetric(metric)], groupby=wr.Config(others[0]) if others else None,
                                  groupby_aggfunc="mean"))
    side_by_side = [metric] + [f"baselines/{n}/acc_mean" for n in names]
    panels.append(wr.BarPlot(title="the distilled set beside the baselines (same budget)",
                             metrics=[wr.SummaryMetric(m) for m in side_by_side],
                             groupby=wr.Config(keys[0]) if keys else None, groupby_aggfunc="mean"))
    blocks = [wr.H1(text=f"dd-runner sweep {group}"),
              wr.P(text=f"{len(jobs)} jobs from {sweep_dir}; swept: {', '.join(keys) or 'seeds only'}; "
                        f"metric {metric}."),
              wr.PanelGrid(runsets=[sweep_runs], panels=panels)]
    best = best_job(jobs, metric)
    run_id = wandb_run_id(best.dir) if best is not None else None
    if best is not None:
        best_runs = wr.Runset(entity=entity, project=project, name=f"best job {best.name}",
                              filters=f"Group == '{group}' and ID == '{run_id}'" if run_id else f"Group == '{group}'")
        blocks += [wr.H2(text=f"best job: {best.name} ({best.describe(keys)}), {metric} = {best.metrics[metric]:.4f}"),
                   wr.PanelGrid(runsets=[best_runs], panels=[
                       wr.MediaBrowser(title="the set at every validation point", media_keys=[MEDIA_KEY], num_columns=1),
                       wr.LinePlot(title="validation accuracy", x=wr.Metric("iteration"), y=[wr.Metric("val/acc_mean")])])]
    return wr.Report(entity=entity, project=project, title=f"dd-runner sweep {group}",
                     description=f"{metric} of {len(jobs)} jobs", blocks=blocks)


def to_spec(obj):
    """A report as plain JSON: every block and panel with its `type`, metrics as 'Config:key',
    'SummaryMetric:key' or 'Metric:key' (what a reader of the spec needs to know), private fields left out."""
    import dataclasses

    wr = _workspaces()
    if isinstance(obj, (wr.Config, wr.SummaryMetric, wr.Metric)):
        return f"{type(obj).__name__}:{obj.name}"
    if dataclasses.is_dataclass(obj):
        return {"type": type(obj).__name__, **{f.name: to_spec(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                                               if not f.name.startswith("_")}}
    if isinstance(obj, (list, tuple)):
        return [to_spec(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_spec(v) for k, v in obj.items()}
    return obj if isinstance(obj, (str, int, float, bool, type(None))) else str(obj)


def write_spec(report, path: Path) -> dict:
    from dd_runner.core.files import atomic_write_bytes

    spec = to_spec(report)
    atomic_write_bytes(path, (json.dumps(spec, indent=1) + "\n").encode())
    return spec


def publish(report) -> str:
    try:
        report.save()
    except Exception as e:  # no network, no login, unknown entity: one line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"cannot publish the W&B report ({type(e).__name__}: {reason}); it needs the network and "
                        "`wandb login` (the spec is in the sweep directory)") from None
    return report.url


def wandb_report(sweep_dir: Path, out: Path, jobs, keys, metric, names, x, do_publish: bool = False, console=None) -> Path:
    report = build_report(sweep_dir, jobs, keys, metric, names, x)
    path = Path(out) / SPEC
    write_spec(report, path)
    say = console.print if console is not None else print
    if do_publish:
        say(f"published the W&B report: {publish(report)}")
    else:
        say(f"wrote the W&B report spec {path}; publish it with `dd-report {sweep_dir} --wandb --publish` "
            "(needs the network and `wandb login`; the runs must be synced first: `wandb sync <job>/wandb/offline-run-*`)")
    return path

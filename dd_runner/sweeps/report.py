"""`dd-report <sweep dir>`: the results of a `dd-run -m` sweep side by side.

Jobs are grouped into settings by the overrides that vary across the sweep, seeds apart; each setting
shows mean ± std across its seeds of the distilled set's test accuracy, its validation accuracy and
every baseline at the same budget, and which jobs failed or did not finish. Writes into the sweep
directory (or --out):

    report.csv   one row per setting (accuracies as fractions, like metrics.json)
    jobs.csv     one row per job: its overrides, status, exit code, accuracies, failure message
    report.png   accuracy against one swept key (--x), one line per setting of the other keys, error
                 bars = std across seeds
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dd_runner.core.errors import ConfigError, DDError, did_you_mean
from dd_runner.sweeps.jobs import Job, collect, swept_keys
from dd_runner.sweeps.plot import choose_x, plot
from dd_runner.sweeps.settings import Setting, group

SEED = "seed"
BASELINE_ORDER = ["random_real", "random_real_learned_lrs", "class_mean", "kmeans", "full_data"]


def accuracy_metric(jobs: Sequence[Job]) -> str:
    """Distillation runs report test/acc_mean; `mode=train` runs test/acc."""
    return "test/acc" if any("test/acc" in (j.metrics or {}) for j in jobs) and not any(
        "test/acc_mean" in (j.metrics or {}) for j in jobs) else "test/acc_mean"


def baselines(jobs: Sequence[Job]) -> List[str]:
    found = {k.split("/")[1] for j in jobs for k in (j.metrics or {}) if k.startswith("baselines/") and k.endswith("/acc_mean")}
    return sorted(found, key=lambda b: (BASELINE_ORDER.index(b) if b in BASELINE_ORDER else len(BASELINE_ORDER), b))


COSTS = {"distill/seconds_per_iteration": "s / iteration", "distill/cpu_seconds_per_iteration": "CPU s / iteration",
         "distill/peak_memory_mb": "distill MB", "eval/peak_memory_mb": "eval MB"}


def architectures(jobs: Sequence[Job]) -> List[str]:
    """The eval.models architectures the jobs report (test/<model>/acc_mean), in order of appearance."""
    found = [k.split("/")[1] for j in jobs for k in (j.metrics or {}) if k.startswith("test/") and k.count("/") == 2
             and k.endswith("/acc_mean")]
    return list(dict.fromkeys(found))


def costs(jobs: Sequence[Job]) -> List[str]:
    return [k for k in COSTS if any(k in (j.metrics or {}) for j in jobs)]


def protocols(jobs: Sequence[Job]) -> List[str]:
    """The distinct evaluation protocols of the finished jobs (metrics.json's eval/protocol)."""
    return list(dict.fromkeys(str(j.metrics["eval/protocol"]) for j in jobs if "eval/protocol" in (j.metrics or {})))


def check_metric(metric: str, jobs: Sequence[Job]) -> str:
    """--metric must be a number some finished job's metrics.json reports (a typo would give an empty
    column and exit 0). With no finished job yet there is nothing to check it against."""
    finished = [j.metrics for j in jobs if j.status == "finished"]
    valid = sorted({k for m in finished for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if finished and metric not in valid:
        raise ConfigError(f"--metric {metric} is not a number in any finished job's metrics.json"
                          f"{did_you_mean(metric, valid)}; valid: {', '.join(valid)}")
    return metric


def common_overrides(jobs: Sequence[Job], swept: Sequence[str]) -> str:
    first = jobs[0].overrides
    return " ".join(f"{k}={v}" for k, v in first.items() if k not in swept)


def fmt(stats: Tuple[Optional[float], Optional[float], int]) -> str:
    """A table cell in %: 'mean ± std' across seeds, the mean alone for one seed, '—' for none."""
    mean, std, _ = stats
    if mean is None:
        return "—"
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * mean:.2f}"


def unfinished(setting: Setting) -> str:
    """'failed: 3 7; unreadable: 4; incomplete: 9' (job names)."""
    parts = [f"{status}: {' '.join(j.name for j in setting.jobs if j.status == status)}"
             for status in ("failed", "unreadable", "incomplete") if any(j.status == status for j in setting.jobs)]
    return "; ".join(parts)


def fmt_plain(stats: Tuple[Optional[float], Optional[float], int]) -> str:
    """A cost cell: the mean across seeds, '—' for none."""
    return "—" if stats[0] is None else f"{stats[0]:,.3g}" if stats[0] < 100 else f"{stats[0]:,.0f}"


def table(keys: Sequence[str], settings: Sequence[Setting], metric: str, names: Sequence[str],
          archs: Sequence[str] = (), cost_keys: Sequence[str] = (), protocol: str = "") -> Table:
    caption = "test accuracy in %, mean ± std across seeds; baselines at the same budget"
    caption += "; on <model>: the distilled set on eval.models architectures" if archs else ""
    caption += "; cost: mean across seeds" if cost_keys else ""
    t = Table(caption=caption + (f"\n{protocol}" if protocol else ""))
    for key in keys:
        t.add_column(escape(key))
    t.add_column("seeds", justify="right")
    t.add_column("distilled", justify="right", style="bold")
    t.add_column("val", justify="right")
    for arch in archs:
        t.add_column(f"on {escape(arch)}", justify="right")
    for name in names:
        t.add_column(name, justify="right")
    for key in cost_keys:
        t.add_column(COSTS[key], justify="right")
    t.add_column("not finished", style="red")
    for s in settings:
        metrics = (metric, "val/acc_mean", *[f"test/{a}/acc_mean" for a in archs],
                   *[f"baselines/{n}/acc_mean" for n in names])
        cells = [fmt(s.stats(m)) for m in metrics] + [fmt_plain(s.stats(k)) for k in cost_keys]
        t.add_row(*map(escape, s.values), f"{len(s.finished)}/{len(s.jobs)}", *cells, unfinished(s))
    return t


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    tmp.replace(path)


def csv_metrics(metric, names, archs, cost_keys) -> List[str]:
    """The metrics.json keys of report.csv and jobs.csv, in column order."""
    cross = [f"baselines/{n}/{a}/acc_mean" for n in names for a in archs]
    return [metric, "val/acc_mean", *[f"baselines/{n}/acc_mean" for n in names], *[f"test/{a}/acc_mean" for a in archs],
            *cross, *cost_keys]


def column_name(key: str) -> str:
    """test/mlp/acc_mean -> mlp_acc_mean; baselines/kmeans/acc_mean -> kmeans_acc_mean; distill/x -> distill_x."""
    parts = key.split("/")
    if parts[0] in ("test", "baselines") and len(parts) > 2:
        parts = parts[1:]
    return "_".join(parts)


def report_rows(keys, settings, metric, names, archs=(), cost_keys=()):
    column = metric.replace("/", "_")  # test_acc_mean by default
    header = [*keys, "jobs", "finished", column, column.removesuffix("_mean") + "_std"]
    wanted = csv_metrics(metric, names, archs, cost_keys)
    for key in wanted[1:]:
        name = column_name(key)
        header += [name, name.removesuffix("_mean") + "_std" if name.endswith("_mean") else name + "_std"]
    header.append("not_finished")
    rows = []
    for s in settings:
        row = [*s.values, len(s.jobs), len(s.finished)]
        for m in wanted:
            mean, std, _ = s.stats(m)
            row += [mean, std]
        rows.append(row + [unfinished(s)])
    return header, rows


def job_rows(jobs: Sequence[Job], metric: str, names: Sequence[str], archs=(), cost_keys=()):
    keys = list(dict.fromkeys(k for j in jobs for k in j.overrides))
    metrics = csv_metrics(metric, names, archs, cost_keys) + ["eval/protocol"]
    header = ["job", "status", "exit_code", *keys, *metrics, "message"]
    rows = [[j.name, j.status, j.exit_code, *[j.overrides.get(k) for k in keys],
             *[(j.metrics or {}).get(m) for m in metrics], j.message]
            for j in jobs]
    return header, rows


def report(sweep_dir: Path, out: Optional[Path] = None, x: Optional[str] = None, metric: Optional[str] = None,
           console: Optional[Console] = None, wandb: bool = False, publish: bool = False) -> List[Setting]:
    """Print the table of the sweep in `sweep_dir`, write report.csv, jobs.csv and report.png; return the
    settings (rows). ConfigError (one line) when there is nothing to report."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} is not a directory; give a sweep directory (outputs/multirun/<date>/<time>)")
    jobs = collect(sweep_dir)
    if not jobs:
        raise ConfigError(f"no jobs in {sweep_dir} (no <job>/.hydra/overrides.yaml); give a sweep directory "
                         "(outputs/multirun/<date>/<time>)")
    metric = check_metric(metric, jobs) if metric else accuracy_metric(jobs)
    swept = swept_keys(jobs)
    keys = [k for k in swept if k != SEED]
    if x is not None and x not in keys:
        raise ConfigError(f"--x {x} is not a swept key; choose one of: {', '.join(keys) or '(none: only seeds vary)'}")
    settings = group(jobs, keys)
    names = baselines(jobs)
    common = common_overrides(jobs, swept)
    archs, cost_keys, seen = architectures(jobs), costs(jobs), protocols(jobs)
    protocol = seen[0] if len(seen) == 1 else (f"{len(seen)} evaluation protocols: see jobs.csv" if seen else "")

    console = console or Console(width=None if sys.stdout.isatty() else 200)  # a file or pipe gets whole rows
    console.print(f"[bold]{escape(str(sweep_dir))}[/bold]: {len(jobs)} jobs; every job: {escape(common) or '(defaults)'}",
                  soft_wrap=True)
    console.print(table(keys, settings, metric, names, archs, cost_keys, escape(protocol)))
    for job in jobs:
        if job.status == "failed":
            console.print(f"[red]job {escape(job.name)} failed[/red] (exit {job.exit_code}, {escape(job.describe(swept))}): "
                          f"{escape(str(job.failure.get('message', '')))}", soft_wrap=True)
        elif job.status == "unreadable":
            console.print(f"[red]job {escape(job.name)}: cannot read its results[/red] ({escape(job.describe(swept))}): "
                          f"{escape(job.message)}; counted as not finished", soft_wrap=True)
        elif job.status == "incomplete":
            console.print(f"[yellow]job {escape(job.name)} did not finish[/yellow] ({escape(job.describe(swept))}): "
                          "no metrics.json (still running, or killed)", soft_wrap=True)

    out = Path(out or sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "report.csv", *report_rows(keys, settings, metric, names, archs, cost_keys))
    write_csv(out / "jobs.csv", *job_rows(jobs, metric, names, archs, cost_keys))
    plot(out / "report.png", f"{sweep_dir}: {common}", keys, settings, metric, x or choose_x(keys, settings))
    console.print(f"wrote {out / 'report.csv'}, {out / 'jobs.csv'}, {out / 'report.png'}", soft_wrap=True)
    if wandb:  # the same sweep as a W&B report (sweeps/wandb_report.py)
        from dd_runner.sweeps.wandb_report import wandb_report

        wandb_report(sweep_dir, out, jobs, keys, metric, names, x or choose_x(keys, settings), publish, console)
    return settings


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="dd-report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path, help="a dd-run -m output directory (outputs/multirun/<date>/<time>)")
    parser.add_argument("--x", help="swept key on the plot's x axis (default: the numeric one with most values)")
    parser.add_argument("--metric", help="metrics.json key in the main column and the plot (default: test/acc_mean)")
    parser.add_argument("--out", type=Path, help="where to write report.csv, jobs.csv, report.png (default: the sweep dir)")
    parser.add_argument("--wandb", action="store_true", help="also build a W&B report (wandb-workspaces): its spec goes "
                        "to wandb_report.json")
    parser.add_argument("--publish", action="store_true", help="with --wandb: save the report to W&B (network, wandb login)")
    args = parser.parse_args(argv)
    try:
        report(args.sweep_dir, args.out, args.x, args.metric, wandb=args.wandb, publish=args.publish)
    except DDError as e:
        print(f"dd-report: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except OSError as e:
        print(f"dd-report: error: cannot write the report: {e}; use --out DIR", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

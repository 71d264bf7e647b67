"""Sweeps that hold up: `dd-run -m` with the basic launcher and with submitit_local (every job in its own
process), failed jobs that leave the others intact and show in the exit code and the report, one W&B
run per job grouped by the sweep, an Optuna search that maximises the returned accuracy, and dd-report."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dd_runner.sweeps.report import report

from cli import FAST, dd_run
from conftest import SHARED_DATA

TINY_JOB = ["dataset=mnist_offline", "init=fixed", "distill.epochs=1", "distill.iterations=2", *FAST]
NAN = "1000000.0"  # distill.init_lr that makes the loss nan at the first iteration: a job that fails


def sweep_dir(cwd: Path) -> Path:
    dirs = list((cwd / "outputs" / "multirun").glob("*/*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def dd_report(args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dd_runner.sweeps.report", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def read_csv(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_submitit_local_sweep_with_a_failing_setting_then_dd_report(tmp_path):
    """2 settings x 2 seeds, each job in its own process; one setting fails (nan loss). The failed jobs'
    exit code reaches dd-run -m through their failure.json, the other jobs' results stay whole, and the
    report gives a row per setting: mean and std across seeds of what the jobs' metrics.json say, the
    failed setting marked failed; plus the CSVs and a PNG."""
    proc = dd_run(["-m", "hydra/launcher=submitit_local", *TINY_JOB, "distill.steps=1", f"distill.init_lr=0.02,{NAN}",
                   "seed=0,1"], tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    root = sweep_dir(tmp_path)
    logs = list((root / ".submitit").glob("*/*_log.err"))
    assert len(logs) == 4, "the jobs did not run through submitit"
    for text in [proc.stderr, *(log.read_text() for log in logs)]:  # Hydra's notice about our launcher
        assert "ConfigStore schema" not in text                     # defaults is silenced everywhere
    for job, seed in ((2, 0), (3, 1)):
        assert (f"job {job} (distill.init_lr={NAN} seed={seed}) failed with exit code 1: the distillation loss "
                "became nan") in proc.stderr
        failure = json.loads((root / str(job) / "failure.json").read_text())
        assert failure["exit_code"] == 1 and failure["type"] == "RunError"
        assert not (root / str(job) / "metrics.json").exists()
    assert f"4 jobs, 2 finished; report: dd-report {root.relative_to(tmp_path)}" in proc.stdout
    accs = []
    for job in (0, 1):
        for name in ("distilled.safetensors", "images.png", "config.yaml"):
            assert (root / str(job) / name).is_file(), name
        accs.append(json.loads((root / str(job) / "metrics.json").read_text())["test/acc_mean"])

    rep = dd_report([str(root)], tmp_path)
    assert rep.returncode == 0, rep.stderr
    rows = read_csv(root / "report.csv")
    assert [(r["distill.init_lr"], r["jobs"], r["finished"], r["not_finished"]) for r in rows] == [
        ("0.02", "2", "2", ""), (NAN, "2", "0", "failed: 2 3")]
    assert float(rows[0]["test_acc_mean"]) == pytest.approx(statistics.fmean(accs))
    assert float(rows[0]["test_acc_std"]) == pytest.approx(statistics.stdev(accs))
    assert rows[1]["test_acc_mean"] == "" and "seed" not in rows[0]  # seeds are aggregated, not a column
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in rep.stdout.splitlines() if line.startswith("│")]
    distilled = f"{100 * statistics.fmean(accs):.2f} ± {100 * statistics.stdev(accs):.2f}"
    assert [c[:3] for c in cells] == [["0.02", "2/2", distilled], [NAN, "0/2", "—"]]
    assert cells[1][-1] == "failed: 2 3" and f"job 2 failed (exit 1, distill.init_lr={NAN} seed=0)" in rep.stdout
    jobs = read_csv(root / "jobs.csv")
    assert [(j["status"], j["exit_code"]) for j in jobs] == [("finished", "0")] * 2 + [("failed", "1")] * 2
    assert "nan" in jobs[2]["message"]
    with Image.open(root / "report.png") as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        image.verify()


def write_job(root: Path, name: str, overrides, metrics=None, failure=None) -> None:
    """A job directory as dd-run leaves it."""
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if failure is not None:
        (job / "failure.json").write_text(json.dumps(failure))


def test_report_groups_settings_orders_baselines_and_marks_unfinished_jobs(tmp_path):
    def m(acc, rr, km):
        return {"test/acc_mean": acc, "val/acc_mean": acc, "baselines/kmeans/acc_mean": km,
                "baselines/random_real/acc_mean": rr}
    write_job(tmp_path, "0", ["init=fixed", "distill.steps=10", "seed=0"], m(0.8, 0.5, 0.6))
    write_job(tmp_path, "1", ["init=fixed", "distill.steps=10", "seed=1"], m(0.9, 0.7, 0.6))
    write_job(tmp_path, "2", ["init=fixed", "distill.steps=3", "seed=0"], m(0.7, 0.4, 0.5))
    write_job(tmp_path, "3", ["init=fixed", "distill.steps=3", "seed=1"], failure={"message": "boom", "exit_code": 2})
    write_job(tmp_path, "10", ["init=fixed", "distill.steps=3", "seed=2"])  # still running, or killed
    (tmp_path / ".submitit" / "x").mkdir(parents=True)

    settings = report(tmp_path)
    assert [s.values for s in settings] == [("3",), ("10",)]  # numeric order, seeds aggregated
    assert [j.name for j in settings[0].jobs] == ["2", "3", "10"]
    assert [j.status for j in settings[0].jobs] == ["finished", "failed", "incomplete"]
    assert settings[0].jobs[1].exit_code == 2
    mean, std, n = settings[1].stats("test/acc_mean")
    assert (mean, std, n) == (pytest.approx(0.85), pytest.approx(statistics.stdev([0.8, 0.9])), 2)
    rows = read_csv(tmp_path / "report.csv")
    assert list(rows[0])[:6] == ["distill.steps", "jobs", "finished", "test_acc_mean", "test_acc_std", "val_acc_mean"]
    assert [k for k in rows[0] if k.endswith("_acc_mean")][2:] == ["random_real_acc_mean", "kmeans_acc_mean"]
    assert rows[0]["not_finished"] == "failed: 3; incomplete: 10" and rows[0]["test_acc_std"] == ""  # one seed

    assert dd_report([str(tmp_path / "nothing")], tmp_path).returncode == 2
    bad_x = dd_report([str(tmp_path), "--x", "seed"], tmp_path)
    assert bad_x.returncode == 2 and "choose one of: distill.steps" in bad_x.stderr


# Runs dd-run -m in a fresh process with W&B's init and finish observed (what each job hands to W&B).
SPY = """
import json, sys
import wandb
from wandb.sdk.wandb_run import Run
from dd_runner.cli.main import main

calls, real_init, real_finish = [], wandb.init, Run.finish

def init(*args, **kwargs):
    run = real_init(*args, **kwargs)
    calls.append({"group": run.group, "job_type": run.job_type, "name": run.name})
    return run

def finish(self, exit_code=None, **kwargs):
    calls.append({"finish": exit_code})
    return real_finish(self, exit_code=exit_code, **kwargs)

wandb.init, Run.finish = init, finish
record = sys.argv[1]
try:
    main(sys.argv[2:])
finally:
    json.dump(calls, open(record, "w"))
"""


def test_basic_launcher_one_wandb_run_per_job_grouped_by_sweep(tmp_path):
    """Hydra's basic launcher (all jobs in one process): each job its own W&B run, grouped by the sweep
    directory, job_type = the method, finished with the job's exit code; a failed job does not stop the
    sweep and the process exits with the worst code."""
    calls = tmp_path / "wandb_calls.json"
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "-c", SPY, str(calls), "-m", *TINY_JOB, "logger=wandb", "distill.steps=1",
                           f"distill.init_lr={NAN},0.02"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    root = sweep_dir(tmp_path)
    job = {"group": root.name, "job_type": "performance_matching"}
    recorded = json.loads(calls.read_text())
    assert [{k: c[k] for k in job} if "group" in c else c for c in recorded] == [job, {"finish": 1}, job, {"finish": 0}]
    assert recorded[0]["name"] != recorded[2]["name"]  # one named run per job
    assert f"job 0 (distill.init_lr={NAN}) failed with exit code 1" in proc.stderr
    assert (root / "1" / "metrics.json").is_file() and not (root / "0" / "metrics.json").exists()
    assert len(list((root / "1" / "wandb").glob("offline-run-*"))) == 1


def test_optuna_search_maximises_the_validation_accuracy(tmp_path):
    """search=lrs with 3 trials: every trial is a job; the study keeps the trial with the highest val
    accuracy (the plugin's default would keep the lowest)."""
    proc = dd_run(["-m", "search=lrs", "hydra.sweeper.n_trials=3", *TINY_JOB, "distill.steps=1"], tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    root = sweep_dir(tmp_path)
    vals = {}
    for job in sorted(p for p in root.iterdir() if p.name.isdigit()):
        overrides = dict(line[2:].split("=", 1) for line in (job / ".hydra" / "overrides.yaml").read_text().splitlines())
        assert 1e-4 <= float(overrides["distill.lr"]) <= 1e-1 and 1e-3 <= float(overrides["distill.init_lr"]) <= 0.3
        vals[job.name] = json.loads((job / "metrics.json").read_text())["val/acc_mean"]
    assert len(vals) == 3
    from omegaconf import OmegaConf

    result = OmegaConf.load(root / "optimization_results.yaml")
    assert result.best_value == pytest.approx(max(vals.values()))
    assert len(report(root)) == 3  # each trial is a setting of (distill.lr, distill.init_lr)


def test_report_wandb_writes_the_report_spec(tmp_path):
    """dd-report --wandb offline: the W&B report's spec (accuracy vs the swept key per setting, baselines
    beside the set, the best job's evolution media) in the sweep directory, and how to publish it."""
    pytest.importorskip("wandb_workspaces")

    def m(acc):
        return {"test/acc_mean": acc, "baselines/random_real/acc_mean": acc - 0.2}
    for i, (init, steps, acc) in enumerate([("fixed", 1, 0.6), ("fixed", 3, 0.8), ("random", 1, 0.5), ("random", 3, 0.7)]):
        write_job(tmp_path, str(i), [f"init={init}", f"distill.steps={steps}", "seed=0"], m(acc))
        (tmp_path / str(i) / "config.yaml").write_text("logger:\n  project: dd-tests\n  entity: lab\n  group: null\n")
    (tmp_path / "1" / "wandb" / "offline-run-20261203_120000-abc123").mkdir(parents=True)
    done = dd_report([str(tmp_path), "--wandb", "--x", "distill.steps"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--wandb --publish" in done.stdout
    spec = json.loads((tmp_path / "wandb_report.json").read_text())
    assert spec["type"] == "Report" and spec["project"] == "dd-tests" and spec["entity"] == "lab"
    grids = [b for b in spec["blocks"] if b["type"] == "PanelGrid"]
    sweep, best = grids
    assert sweep["runsets"][0]["filters"] == f"Group == '{tmp_path.name}'"
    panels = {p["type"]: p for p in sweep["panels"]}
    assert panels["ScatterPlot"]["x"] == "Config:distill.steps" and panels["ScatterPlot"]["y"] == "SummaryMetric:test/acc_mean"
    # accuracy vs the swept key, a line per setting of the other swept key
    assert panels["LinePlot"]["x"] == "Config:distill.steps" and panels["LinePlot"]["groupby"] == "Config:init"
    assert panels["BarPlot"]["metrics"] == ["SummaryMetric:test/acc_mean", "SummaryMetric:baselines/random_real/acc_mean"]
    # the best job (0.8: job 1) and its set's evolution, by its W&B run id
    assert best["runsets"][0]["filters"] == f"Group == '{tmp_path.name}' and ID == 'abc123'"
    media = next(p for p in best["panels"] if p["type"] == "MediaBrowser")
    assert media["media_keys"] == ["distilled/evolution"]
    assert any(b["type"] == "H2" and "best job: 1" in json.dumps(b) for b in spec["blocks"])
    # publishing needs the network and a login: without them one line, exit 2, the spec kept
    published = subprocess.run([sys.executable, "-m", "dd_runner.sweeps.report", str(tmp_path), "--wandb", "--publish"],
                               capture_output=True, text=True, timeout=300, cwd=tmp_path,
                               env={**os.environ, "WANDB_API_KEY": "", "WANDB_CONFIG_DIR": str(tmp_path / "cfg")})
    assert published.returncode == 2 and "cannot publish the W&B report" in published.stderr, published.stderr
    assert len(published.stderr.strip().splitlines()) == 1 and (tmp_path / "wandb_report.json").is_file()

"""Never lose a run: checkpoints, resume after SIGKILL / SIGTERM, determinism, failure records."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch
from safetensors import safe_open

from dd_runner.runtime.checkpoint import flatten, unflatten
from dd_runner.core.errors import ConfigError, RunError
from dd_runner.run import run

from cli import FAST, dd_run, popen
from conftest import TINY, compose_cfg, results


# Random init, several nets, validation and selection: every piece of state a resume must restore.
RUN = ["dataset=mnist_offline", "init=random", "distill.steps=3", "distill.epochs=2", "distill.iterations=24",
       "distill.sample_nets=2", "eval.every=8", "checkpoint.every=1", *FAST]


def checkpoint_iteration(run_dir) -> int:
    try:
        with safe_open(str(run_dir / "checkpoint.safetensors"), "pt") as f:
            return int(f.metadata()["iteration"])
    except Exception:  # not written yet, or being replaced
        return -1


def run_until(args, run_dir, cwd, iteration: int, sig: int):
    proc = popen([*args, f"output_dir={run_dir}"], cwd)
    deadline = time.time() + 240
    while checkpoint_iteration(run_dir) < iteration:
        assert proc.poll() is None, f"dd-run ended before iteration {iteration}: {proc.stderr.read()}"
        assert time.time() < deadline, "no checkpoint progress"
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("uninterrupted")
    proc = dd_run([*RUN, f"output_dir={cwd / 'run'}"], cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd / "run"


@pytest.mark.parametrize("kill_at", [2, 13])
def test_sigkill_then_resume_is_byte_identical(uninterrupted, tmp_path, kill_at):
    run_dir = tmp_path / "run"
    proc = run_until(RUN, run_dir, tmp_path, kill_at, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "distilled.safetensors").exists()
    resumed = dd_run([f"resume={run_dir}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "distilled.safetensors").read_bytes() == (uninterrupted / "distilled.safetensors").read_bytes()
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (uninterrupted, run_dir))
    assert results(a) == results(b)
    assert "resuming from the checkpoint of iteration" in (run_dir / "dd-run.log").read_text()
    # the set at every validation point survives the kill: the same snapshots, and the whole evolution
    snapshots = sorted(p.name for p in (uninterrupted / "snapshots").iterdir())
    assert snapshots == ["16.safetensors", "24.safetensors", "8.safetensors"]
    assert sorted(p.name for p in (run_dir / "snapshots").iterdir()) == snapshots
    for name in snapshots:
        assert (run_dir / "snapshots" / name).read_bytes() == (uninterrupted / "snapshots" / name).read_bytes()
    assert (run_dir / "evolution.png").is_file()


def test_sigterm_saves_a_checkpoint_and_rerunning_continues(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_until(RUN, run_dir, tmp_path, 5, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    err = proc.stderr.read()
    assert "stopped by SIGTERM" in err and f"resume={run_dir}" in err and "Traceback" not in err
    failure = json.loads((run_dir / "failure.json").read_text())
    assert failure["type"] == "Interrupted" and failure["iteration"] == checkpoint_iteration(run_dir) >= 5
    # re-running the same command into the same directory continues the run
    again = dd_run([*RUN, f"output_dir={run_dir}"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert not (run_dir / "failure.json").exists()
    assert (run_dir / "distilled.safetensors").read_bytes() == (uninterrupted / "distilled.safetensors").read_bytes()


def test_same_seed_same_artefacts_and_finished_runs_are_not_redone(mnist_overrides, tmp_path):
    overrides = mnist_overrides + TINY + ["init=random", "distill.steps=2", "eval.baselines=[random_real]"]
    m1 = run(compose_cfg(overrides + [f"output_dir={tmp_path / 'a'}"]))
    m2 = run(compose_cfg(overrides + [f"output_dir={tmp_path / 'b'}"]))
    for name in ("distilled.safetensors", "config.yaml"):
        a, b = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert a == b or name == "config.yaml" and a.replace(b"/a\n", b"/b\n") == b, name
    assert results(m1) == results(m2)
    # the same config into a finished run's directory returns its metrics without recomputing
    stamp = (tmp_path / "a" / "metrics.json").stat().st_mtime_ns
    assert run(compose_cfg(overrides + [f"output_dir={tmp_path / 'a'}"])) == m1
    assert (tmp_path / "a" / "metrics.json").stat().st_mtime_ns == stamp
    # a different seed in the same directory is refused, naming the difference
    with pytest.raises(ConfigError, match=r"holds a run of another config \(seed: 0 -> 1\)"):
        run(compose_cfg(overrides + ["seed=1", f"output_dir={tmp_path / 'a'}"]))


def test_resume_with_more_iterations_continues_and_structure_cannot_change(mnist_overrides, tmp_path):
    overrides = mnist_overrides + TINY + ["init=fixed", "distill.steps=1", "checkpoint.every=1",
                                          f"output_dir={tmp_path}"]
    run(compose_cfg(overrides))
    more = run(compose_cfg(["resume=" + str(tmp_path)]), resume_overrides=["distill.iterations=5"])
    assert more["distill/iterations"] == 5
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        assert f.metadata()["iteration"] == "5"
    with pytest.raises(ConfigError, match="distill.steps cannot change"):
        run(compose_cfg(["resume=" + str(tmp_path)]), resume_overrides=["distill.steps=2"])
    with pytest.raises(ConfigError, match="no config.yaml"):
        run(compose_cfg([f"resume={tmp_path / 'nowhere'}"]))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(mnist_overrides, tmp_path):
    cfg = compose_cfg(mnist_overrides + TINY + ["init=fixed", "distill.init_lr=1e6", "distill.iterations=5",
                                                "checkpoint.every=1", f"output_dir={tmp_path}"])
    with pytest.raises(RunError, match="lower distill.lr .* or distill.init_lr"):
        run(cfg)
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert failure["type"] == "RunError" and failure["checkpoint"]
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        assert int(f.metadata()["iteration"]) == failure["iteration"]
        assert all(torch.isfinite(f.get_tensor(k)).all() for k in f.keys() if f.get_tensor(k).is_floating_point())
    assert not (tmp_path / "distilled.safetensors").exists() and not (tmp_path / "metrics.json").exists()


def test_optimizer_state_round_trips_without_pickle():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.999))
    p.grad = torch.ones(3)
    opt.step()
    tensors = {}
    blob = json.loads(json.dumps(flatten(opt.state_dict(), "optimizer", tensors)))
    restored = unflatten(blob, tensors)
    fresh = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=0.1, betas=(0.5, 0.999))
    fresh.load_state_dict(restored)
    assert fresh.state_dict()["param_groups"][0]["betas"] == (0.5, 0.999)
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

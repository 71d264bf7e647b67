"""One run over several processes: the nets of each outer step (and the evaluation nets) split across
ranks, the meta-gradient all-reduced, one shared run directory written by rank 0 alone, resume.

Two levels: the meta-gradient of 2 gloo processes against one process in float64 (exact up to
summation order), and the real entry point under torchrun on CPU against one process (float32)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from dd_runner.core import distributed
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.engines.sharded import meta_gradient
from dd_runner.synthetic.set import SyntheticSet

from cli import FAST, dd_run
from conftest import SHARED_DATA
from helpers import tiny_learner, tiny_real_batch

NET_COUNTS = (1, 3, 4)  # fewer nets than ranks (rank 1 idle), an uneven split, an even one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def problem(n_nets: int):
    learner, real = tiny_learner(), tiny_real_batch()
    torch.manual_seed(3)
    synth = SyntheticSet(2, 2, num_classes=3, ipc=1, example_shape=(6,), label_type="soft", init_lr=0.3).double()
    return learner, real, synth, [learner.draw(100 + j) for j in range(n_nets)]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        results = {}
        for engine in ("unroll", "recompute"):
            for n in NET_COUNTS:
                learner, real, synth, thetas = problem(n)
                meta = meta_gradient(ENGINES.get(engine), learner, thetas, synth, real,
                                                 EngineOptions(accumulate_loss=True))
                results[f"{engine}/{n}"] = {"loss": meta.loss, "grads": meta.grads,
                                            "gathered": distributed.gather([10 * j for j in range(n)][rank::world], n)}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_meta_gradient_over_two_processes_equals_one_process(tmp_path):
    """Float64, so the only difference is the order of the sums: 1e-12 relative."""
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for engine in ("unroll", "recompute"):
            for n in NET_COUNTS:
                learner, real, synth, thetas = problem(n)
                ref = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions(accumulate_loss=True))
                got = results[f"{engine}/{n}"]
                assert got["loss"] == pytest.approx(ref.loss, rel=1e-12)
                for g, r in zip(got["grads"], ref.grads):
                    torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-14)
                assert got["gathered"] == [10 * j for j in range(n)]  # every rank, in net order


def test_single_process_helpers_are_the_identity():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.shard([1, 2, 3]) == [1, 2, 3] and distributed.gather([1, 2, 3], 3) == [1, 2, 3]
    assert distributed.max_over_ranks(15) == 15


# --- the real entry point under torchrun ---------------------------------------------------------------
# Random init, 4 nets per outer step (2 per rank), validation every iteration, 3 evaluation nets (2 + 1).
RUN = ["dataset=mnist_offline", "init=random", "distill.sample_nets=4", "distill.steps=2", "distill.epochs=1",
       "eval.nets=3", "eval.val_nets=2", "checkpoint.every=1", *FAST]


def torchrun(args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "dd_runner", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_torchrun_two_processes_give_the_one_process_result_and_resume(tmp_path):
    """2 gloo processes on CPU (2 iterations, then resumed to 3) against one process (3 iterations) that
    samples the same networks. Tolerance: the processes sum the meta-gradients of their nets in another
    order than one process does (float32), and Adam divides by sqrt(v), so an element whose gradient
    nearly cancels across nets can move by ~lr * 1e-3 differently; 2e-4 on synthetic data of scale 1 after
    3 iterations at lr 0.01 (a rank that left out the other rank's nets would differ by ~lr = 1e-2)."""
    single = dd_run([*RUN, "distill.iterations=3", f"output_dir={tmp_path / 'single'}"], tmp_path)
    assert single.returncode == 0, single.stderr

    first = torchrun([*RUN, "distill.iterations=2", "logger=wandb"], tmp_path)
    assert first.returncode == 0, first.stderr
    run_dirs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(run_dirs) == 1, run_dirs  # one directory shared by both ranks, decided by rank 0
    run_dir = run_dirs[0]
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1  # rank 0 alone logs to W&B
    assert (run_dir / "metrics.json").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert "[rank 1]" not in (run_dir / "dd-run.log").read_text()

    resumed = torchrun([f"resume={run_dir}", "distill.iterations=3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint of iteration 2" in (run_dir / "dd-run.log").read_text()

    got, want = load_file(run_dir / "distilled.safetensors"), load_file(tmp_path / "single" / "distilled.safetensors")
    torch.testing.assert_close(got["data"], want["data"], rtol=0, atol=2e-4)
    torch.testing.assert_close(got["lrs"], want["lrs"], rtol=1e-4, atol=1e-6)
    assert torch.equal(got["targets"], want["targets"]) and torch.equal(got["classes"], want["classes"])

"""CPU guards of what makes the GPU path fast: no host-device sync inside an outer step, the backend flags
chosen in one place, real data moved to the device the cheap way (pinned, or resident), and the optionally
compiled evaluation giving the loop's figures."""

from __future__ import annotations

import contextlib
import sys

import pytest
import torch

from dd_runner.core.device import backend_flags, configure_backends

from conftest import TINY, compose_cfg

# Calls that make the host wait for the device when the tensor lives on a GPU.
SYNCING = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")


class SyncCounter:
    """Counts syncing calls made directly by dd_runner's own code (torch's internals are not ours to fix)."""

    def __init__(self, monkeypatch):
        self.count = 0
        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def call(tensor, *args, **kwargs):
            if "/dd_runner/" in sys._getframe(1).f_code.co_filename.replace("\\", "/"):
                self.count += 1
            return original(tensor, *args, **kwargs)
        return call


def syncs_per_outer_step(monkeypatch, tmp_path, overrides) -> list:
    """The syncing calls of each outer step of a real run (counted between progress-bar updates)."""
    import dd_runner.methods.loop as loop
    from dd_runner.run import run

    counter = SyncCounter(monkeypatch)
    marks = []

    class Bar:
        def update(self, **_):
            marks.append(counter.count)

    @contextlib.contextmanager
    def progress(*_, **__):
        marks.append(counter.count)
        yield Bar()

    monkeypatch.setattr(loop, "progress", progress)
    cfg = compose_cfg(TINY + overrides + ["distill.iterations=4", "eval.every=0", "logger.log_every=1000",
                                          "checkpoint.every=1000", "eval.nets=1"])
    run(cfg, output_dir=str(tmp_path / "run"))
    return [b - a for a, b in zip(marks, marks[1:])]


@pytest.mark.parametrize("engine", ["unroll", pytest.param("vmap_recompute", marks=pytest.mark.slow)])
def test_one_sync_per_outer_step_whatever_the_unroll(monkeypatch, tmp_path, mnist_overrides, engine):
    """An outer step reads the loss back once (the non-finite check), nothing per net, inner step or real
    micro-batch; a logged step (here the last) reads its figures back in one more transfer."""
    small = syncs_per_outer_step(monkeypatch, tmp_path / "small", mnist_overrides + [
        "init=random", f"distill.engine={engine}", "distill.steps=1", "distill.epochs=1", "distill.sample_nets=2"])
    large = syncs_per_outer_step(monkeypatch, tmp_path / "large", mnist_overrides + [
        "init=random", f"distill.engine={engine}", "distill.steps=3", "distill.epochs=2", "distill.sample_nets=3",
        "distill.accumulate_loss=true", "distill.real_chunk=16"])
    assert len(small) == len(large) == 4
    assert small == large and max(small[:-1]) == 1 and small[-1] <= 2, (small, large)


@pytest.fixture
def restore_backends():
    before = backend_flags()
    yield
    configure_backends(before["deterministic_algorithms"])
    torch.backends.cuda.matmul.allow_tf32 = before["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = before["cudnn_allow_tf32"]
    torch.backends.cudnn.benchmark = before["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = before["cudnn_deterministic"]


def test_backend_flags_fast_by_default_and_off_when_deterministic(restore_backends):
    fast = configure_backends(False)
    assert fast == {"deterministic_algorithms": False, "matmul_allow_tf32": True, "cudnn_allow_tf32": True,
                    "cudnn_benchmark": True, "cudnn_deterministic": False}
    exact = configure_backends(True)
    assert exact == {"deterministic_algorithms": True, "matmul_allow_tf32": False, "cudnn_allow_tf32": False,
                     "cudnn_benchmark": False, "cudnn_deterministic": True}
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.are_deterministic_algorithms_enabled()


def test_a_run_sets_the_flags_of_its_config(restore_backends, tmp_path, mnist_overrides):
    from dd_runner.run import run

    configure_backends(False)
    run(compose_cfg(TINY + mnist_overrides + ["init=fixed", "distill.iterations=1", "deterministic=true"]),
        output_dir=str(tmp_path / "exact"))
    assert backend_flags()["matmul_allow_tf32"] is False and backend_flags()["cudnn_benchmark"] is False

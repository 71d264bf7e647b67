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


@pytest.mark.slow  # compiling LeNet on a CPU takes a minute or two
def test_compiled_evaluation_gives_the_same_figures(mnist_overrides):
    """eval.compile=true compiles the test passes (one net, and several under vmap): the same accuracies."""
    from dd_runner.core.device import Precision
    from dd_runner.data import load_data
    from dd_runner.eval.protocol import batched_scores, looped_scores
    from dd_runner.models import build_learner
    from dd_runner.synthetic.build import make_synthetic

    cfg = compose_cfg(mnist_overrides + ["init=random", "distill.steps=2", "distill.epochs=1",
                                         "distill.init_from=real", "eval.compile=true"])
    assert cfg.eval.compile is True
    data = load_data(cfg.dataset)
    cpu = torch.device("cpu")
    figures = {}
    for compiled in (False, True):
        learner = build_learner(cfg.model, data, cpu, Precision("fp32", cpu))
        if compiled:
            learner.compile_evaluation()
        synth = make_synthetic(cfg, data, learner, cfg.seed)
        thetas = [learner.draw(7 + i) for i in range(3)]
        figures[compiled] = [looped_scores(learner, thetas[:1], synth.unrolled(), data.test, 512),
                             batched_scores(learner, thetas, synth.unrolled(), data.test, 512)]
    for plain, compiled in zip(figures[False], figures[True]):
        assert [m["acc"] for m in compiled] == [m["acc"] for m in plain]
        assert [m["loss"] for m in compiled] == pytest.approx([m["loss"] for m in plain], rel=1e-4)


class FakeCuda:
    """Records how host tensors are moved to a CUDA device, on a machine without one: pin_memory and
    .to("cuda") are recorded and return the tensor itself."""

    def __init__(self, monkeypatch):
        self.pinned, self.moves = [], []
        plain_to = torch.Tensor.to

        def pin_memory(t):
            self.pinned.append(tuple(t.shape))
            return t

        def to(t, *args, **kwargs):
            target = args[0] if args else kwargs.get("device")
            if isinstance(target, torch.device) and target.type == "cuda":
                self.moves.append((tuple(t.shape), kwargs.get("non_blocking", False)))
                return t
            return plain_to(t, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
        monkeypatch.setattr(torch.Tensor, "to", to)


def test_text_batches_reach_the_gpu_through_pinned_memory(monkeypatch):
    """A host batch of token ids (and its mask and labels) is pinned, then copied without blocking."""
    from dd_runner.data.bundle import Split

    batch = Split(torch.randint(0, 100, (8, 16)), torch.randint(0, 4, (8,)), torch.ones(8, 16, dtype=torch.long))
    fake = FakeCuda(monkeypatch)
    batch.to(torch.device("cuda"))
    assert fake.pinned == [(8, 16), (8,), (8, 16)]
    assert fake.moves == [((8, 16), True), ((8,), True), ((8, 16), True)]


def test_real_training_data_is_resident_on_the_gpu(monkeypatch):
    """The training split moves to the device once (minibatches are then gathers there); a split over
    RESIDENT_BYTES stays on the host, and each of its minibatches crosses pinned and without blocking."""
    from dd_runner.data import stream
    from dd_runner.data.bundle import Split

    split = Split(torch.randn(100, 1, 4, 4), torch.randint(0, 10, (100,)))
    fake = FakeCuda(monkeypatch)
    batches = stream.RealBatches(split, 32, seed=0, device=torch.device("cuda"))
    assert batches.split is not split and fake.moves == [((100, 1, 4, 4), True), ((100,), True)]
    monkeypatch.setattr(stream, "RESIDENT_BYTES", 100)
    fake.moves.clear()
    batches = stream.RealBatches(split, 32, seed=0, device=torch.device("cuda"))
    assert batches.split is split and not fake.moves
    assert len(batches.next()) == 32 and fake.moves == [((32, 1, 4, 4), True), ((32,), True)]

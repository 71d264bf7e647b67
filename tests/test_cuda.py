"""The GPU path on a real CUDA device (`pytest -m cuda`; scripts/gpu_check.py runs them): AMP bf16 and fp16,
every engine equal to unroll, vmap evaluation equal to the loop, deterministic=true giving identical
artefacts twice, accelerator memory freed between multirun jobs, and the outer step captured as a CUDA graph
(distill.cuda_graph) giving eager's meta-gradient for LeNet and a tiny transformer. Each skips cleanly
without CUDA."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from dd_runner.core.device import Precision
from dd_runner.data import load_data
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.eval.protocol import batched_accuracies, looped_accuracies
from dd_runner.models import build_learner
from dd_runner.models.learner import Learner
from dd_runner.synthetic.build import make_synthetic
from dd_runner.synthetic.set import SyntheticSet

from conftest import TINY, compose_cfg, results
from helpers import tiny_learner, tiny_real_batch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_fp32():
    """IEEE fp32 for the comparisons (dd-run's own runs allow TF32: dd_runner.core.device)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def lenet_setup(mnist_overrides, precision="fp32", extra=()):
    cfg = compose_cfg(mnist_overrides + ["init=random", "distill.steps=2", "distill.epochs=2", "labels=soft",
                                         "distill.init_from=real", "device=cuda", *extra])
    data = load_data(cfg.dataset)
    learner = build_learner(cfg.model, data, CUDA, Precision(precision, CUDA))
    return cfg, data, learner, make_synthetic(cfg, data, learner, cfg.seed)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_amp_meta_gradient_is_close_to_fp32(mnist_overrides, precision):
    real = None
    grads = {}
    for name in ("fp32", precision):
        cfg, data, learner, synth = lenet_setup(mnist_overrides, name)
        real = data.train.select(torch.arange(512)).to(CUDA)
        meta = ENGINES.get("unroll")(learner, [learner.draw(1)], synth, real, EngineOptions())
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in meta.grads)
        grads[name] = torch.cat([g.flatten() for g in meta.grads])
    assert F.cosine_similarity(grads["fp32"], grads[precision], dim=0) > 0.95


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_amp_runs_end_to_end(mnist_overrides, tmp_path, precision):
    from dd_runner.run import run

    metrics = run(compose_cfg(mnist_overrides + TINY + [f"precision={precision}", "init=fixed", "device=cuda"]),
                  output_dir=str(tmp_path))
    assert torch.isfinite(torch.tensor(metrics["distill/final_loss"])) and 0 <= metrics["test/acc_mean"] <= 1


def test_every_engine_equals_unroll_in_float64():
    torch.manual_seed(4)
    module = tiny_learner().module
    learner = Learner(module, CUDA, Precision("fp32", CUDA), weight_init="xavier")
    synth = SyntheticSet(3, 2, num_classes=3, ipc=2, example_shape=(6,), label_type="soft", init_lr=0.3).double().to(CUDA)
    real = tiny_real_batch().to(CUDA)
    thetas = [learner.draw(seed) for seed in range(4)]
    reference = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions(accumulate_loss=True))
    for engine in ("recompute", "vmap", "vmap_recompute"):
        meta = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions(accumulate_loss=True, real_chunk=7))
        assert meta.loss == pytest.approx(reference.loss, rel=1e-10), engine
        for a, b in zip(reference.grads, meta.grads):
            torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-11)


def test_every_engine_equals_unroll_on_lenet(mnist_overrides):
    cfg, data, learner, synth = lenet_setup(mnist_overrides)
    real = data.train.select(torch.arange(256)).to(CUDA)
    thetas = [learner.draw(seed) for seed in range(4)]
    reference = torch.cat([g.flatten() for g in ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions()).grads])
    for engine in ("recompute", "vmap", "vmap_recompute"):
        got = torch.cat([g.flatten() for g in ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions()).grads])
        assert F.cosine_similarity(got, reference, dim=0) > 0.9999, engine
        torch.testing.assert_close(got, reference, rtol=1e-3, atol=1e-6)


def test_vmap_evaluation_equals_the_loop(mnist_overrides):
    cfg, data, learner, synth = lenet_setup(mnist_overrides)
    thetas = [learner.draw(100 + i) for i in range(6)]
    steps = synth.unrolled()
    looped = looped_accuracies(learner, thetas, steps, data.test, 1024)
    batched = batched_accuracies(learner, thetas, steps, data.test, 1024)
    assert max(abs(a - b) for a, b in zip(looped, batched)) <= 0.005, (looped, batched)  # fp32 summation order


def test_deterministic_runs_write_identical_artefacts(mnist_overrides, tmp_path):
    from dd_runner.run import run

    overrides = mnist_overrides + TINY + ["init=random", "distill.sample_nets=2", "deterministic=true", "device=cuda"]
    for name in ("a", "b"):
        run(compose_cfg(overrides), output_dir=str(tmp_path / name))
    assert (tmp_path / "a/distilled.safetensors").read_bytes() == (tmp_path / "b/distilled.safetensors").read_bytes()
    # cost (wall time, CUDA peak memory: 131.19 vs 130.95 MB on an H200) is measured, not computed
    metrics = [results(json.loads((tmp_path / n / "metrics.json").read_text())) for n in ("a", "b")]
    assert metrics[0] == metrics[1]


def test_memory_is_freed_between_multirun_jobs(mnist_overrides, tmp_path):
    from dd_runner.cli.main import _free_accelerator
    from dd_runner.run import run

    _free_accelerator()
    before = torch.cuda.memory_allocated()
    run(compose_cfg(mnist_overrides + TINY + ["init=random", "distill.sample_nets=4", "distill.engine=vmap",
                                              "device=cuda"]), output_dir=str(tmp_path))
    _free_accelerator()  # what dd-run does after every job of a sweep
    assert torch.cuda.memory_allocated() - before < 2**20
    assert torch.cuda.max_memory_allocated() == torch.cuda.memory_allocated()  # peak statistics reset too


# --- distill.cuda_graph: the captured outer step against eager on the same inputs ----------------------------
def captured_against_eager(learner, synth, batches, thetas_of):
    """Relative L2 distance of the captured step's meta-gradient from eager's, for the two batches replayed
    after the capture (the update is left out, so the set stays what eager saw)."""
    from dd_runner.methods.captured_step import WARMUP_STEPS, StaticStep, StepParts

    def compute(inputs, scale):
        real, thetas = inputs
        return ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions())

    parts = StepParts(inputs=lambda it: (batches[it], thetas_of(it)), compute=compute)
    step = StaticStep(parts, synth.learnable(), lambda: torch.zeros((), device=CUDA), 1.0, capture=True,
                      required=True)
    errors = []
    for it in range(WARMUP_STEPS + 2):
        meta, _ = step.step(it)
        if it >= WARMUP_STEPS:
            assert step.graph is not None  # captured at WARMUP_STEPS, replayed after
            captured = torch.cat([g.flatten() for g in meta.grads]).clone()
            eager = compute((batches[it], thetas_of(it)), 1.0)
            reference = torch.cat([g.flatten() for g in eager.grads])
            assert float(meta.objective) == pytest.approx(eager.loss, rel=1e-5)
            errors.append(((captured - reference).norm() / reference.norm()).item())
    return errors


def test_captured_step_equals_eager_on_lenet(mnist_overrides):
    cfg, data, learner, synth = lenet_setup(mnist_overrides)
    batches = [data.train.select(torch.arange(i * 256, (i + 1) * 256)).to(CUDA) for i in range(5)]
    errors = captured_against_eager(learner, synth, batches, lambda it: [learner.draw(it), learner.draw(100 + it)])
    assert max(errors) <= 1e-5, errors


def test_captured_step_equals_eager_on_a_tiny_transformer():
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    from dd_runner.data.bundle import Split
    from dd_runner.models.transformer import TextClassifierLearner

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=64, dim=32, hidden_dim=64, n_layers=2, n_heads=2, max_position_embeddings=32,
                              num_labels=4, dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    module = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    learner = TextClassifierLearner(module, CUDA, Precision("fp32", CUDA), head=[n for n, _ in module.named_parameters()],
                                    pretrained=False, seq_len=8)
    synth = SyntheticSet(2, 1, num_classes=4, ipc=1, example_shape=(8, 32), label_type="soft", init_lr=0.1).to(CUDA)
    gen = torch.Generator().manual_seed(1)
    batches = [Split(torch.randint(1, 64, (16, 12), generator=gen), torch.randint(0, 4, (16,), generator=gen),
                     torch.ones(16, 12, dtype=torch.long)).to(CUDA) for _ in range(5)]
    errors = captured_against_eager(learner, synth, batches, lambda it: [learner.draw(it)])
    assert max(errors) <= 1e-5, errors


def test_a_captured_run_finishes_and_says_so(mnist_overrides, tmp_path, caplog):
    from dd_runner.run import run

    caplog.set_level("INFO", logger="dd_runner.methods.captured_step")
    metrics = run(compose_cfg(mnist_overrides + TINY + ["init=random", "distill.sample_nets=2", "distill.iterations=8",
                                                        "distill.cuda_graph=true", "device=cuda"]),
                  output_dir=str(tmp_path))
    assert any("is captured" in r.getMessage() for r in caplog.records)
    assert torch.isfinite(torch.tensor(metrics["distill/final_loss"])) and 0 <= metrics["test/acc_mean"] <= 1

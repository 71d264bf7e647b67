"""precision=bf16 with the recompute and vmap engines and batched evaluation, on CPU where autocast
supports it (test_precision.py covers unroll and fp16): forward passes in bf16, the synthetic data,
lrs, labels and their gradients in fp32, the meta-gradient close to the fp32 one but not equal to it
(autocast really ran). The same path runs on CUDA; scripts/bench.py measures its speed."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from dd_runner.data import load_data
from dd_runner.core.device import Precision
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.models import build_learner
from dd_runner.run import run
from dd_runner.synthetic.build import make_synthetic

from conftest import TINY, compose_cfg

CPU = torch.device("cpu")


def flat(grads) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("engine", ["recompute", "vmap"])
def test_bf16_meta_gradient_of_batched_engines_is_fp32_and_close_to_fp32(engine, mnist_overrides):
    cfg = compose_cfg(mnist_overrides + ["labels=soft", "distill.steps=3", "distill.epochs=1"])
    data = load_data(cfg.dataset, cfg.model)
    real = data.train.select(torch.arange(128))
    grads = {}
    for precision in ("fp32", "bf16"):
        learner = build_learner(cfg.model, data, CPU, Precision(precision, CPU))
        synth = make_synthetic(cfg, data, learner, seed=0)
        thetas = [learner.draw(1), learner.draw(2)]
        meta = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions(accumulate_loss=True))
        assert all(p.dtype == torch.float32 for p in synth.learnable())
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in meta.grads)
        grads[precision] = flat(meta.grads)
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"], grads["fp32"], dim=0).item()
    assert 0.9 < cosine < 1 - 1e-6, cosine  # close, and not the fp32 gradient: autocast ran


def test_bf16_run_end_to_end_with_vmap(mnist_overrides, tmp_path):
    cfg = compose_cfg(mnist_overrides + TINY + [
        "precision=bf16", "device=auto", "init=random", "distill.engine=vmap", "distill.sample_nets=2",
        "distill.vmap_chunk=1", "distill.steps=2", "distill.epochs=2", f"output_dir={tmp_path}"])
    metrics = run(cfg)
    assert metrics["test/n_nets"] == 2 and 0.0 < metrics["test/acc_mean"] <= 1.0
    assert torch.isfinite(torch.tensor(metrics["distill/final_loss"]))
    with safe_open(str(tmp_path / "distilled.safetensors"), "pt") as f:
        assert f.get_tensor("data").dtype == torch.float32 and f.get_tensor("lrs").dtype == torch.float32

"""AMP: autocast applies to forward passes only; synthetic data, lrs and labels stay fp32; the
meta-gradient stays close to fp32's; fp16 runs with a loss scaler end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dd_runner.data import load_data
from dd_runner.core.device import Precision
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.models import build_learner
from dd_runner.run import run
from dd_runner.synthetic.build import make_synthetic

from conftest import TINY, compose_cfg

CPU = torch.device("cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_meta_gradient_is_close_to_fp32(mnist_overrides, precision):
    cfg = compose_cfg(mnist_overrides + ["init=fixed", "distill.steps=2", "distill.epochs=2", "labels=soft"])
    data = load_data(cfg.dataset)
    real = data.train.select(torch.arange(256))
    grads = {}
    for name in ("fp32", precision):
        learner = build_learner(cfg.model, data, CPU, Precision(name, CPU))
        synth = make_synthetic(cfg, data, learner, cfg.seed)
        assert {p.dtype for p in synth.parameters()} == {torch.float32}
        meta = ENGINES.get("unroll")(learner, [learner.draw(1)], synth, real, EngineOptions())
        assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in meta.grads)
        grads[name] = torch.cat([g.flatten() for g in meta.grads])
    assert F.cosine_similarity(grads["fp32"], grads[precision], dim=0) > 0.95


def test_fp16_runs_end_to_end_with_a_loss_scaler(mnist_overrides, tmp_path):
    metrics = run(compose_cfg(mnist_overrides + TINY + ["precision=fp16", "init=fixed", "distill.steps=1",
                                                        f"output_dir={tmp_path}"]))
    assert 0 <= metrics["test/acc_mean"] <= 1
    assert torch.isfinite(torch.tensor(metrics["distill/final_loss"]))

"""distill.average: a running average of the synthetic set, validated beside the raw set; the better of the
two at any validation point is the set kept."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from dd_runner.config.validate import validate
from dd_runner.core.errors import ConfigError
from dd_runner.methods.averaging import SetAverage
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data


def test_average_follows_the_values_and_applied_swaps_them_back():
    p = torch.nn.Parameter(torch.zeros(3))
    average = SetAverage([p], decay=0.5)
    expected = torch.zeros(3)
    for value in (4.0, 8.0, 2.0):
        p.data.fill_(value)
        average.update()
        decay = min(0.5, (1 + average.updates) / (10 + average.updates))
        expected = decay * expected + (1 - decay) * value
    assert torch.allclose(average.shadow[0], expected)
    with average.applied():
        assert torch.allclose(p.data, expected)
    assert torch.equal(p.data, torch.full((3,), 2.0))  # the raw values are back

    restored = SetAverage([torch.nn.Parameter(torch.ones(3))], decay=0.5)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 3 and torch.allclose(restored.shadow[0], expected)


def test_fixed_init_run_validates_the_average_and_checkpoints_it(tmp_path, caplog):
    shared_data("mnist")
    cfg = compose_cfg(MNIST_OFFLINE + TINY + [
        "experiment=mnist_fixed_10", "dataset.download=false", "distill.iterations=20", "distill.batch_size=64",
        "distill.lr=0.05", "eval.every=10", "distill.average=0.8", "device=cpu", f"output_dir={tmp_path}"])
    with caplog.at_level("INFO", logger="dd_runner.methods.loop"):
        metrics = run(cfg)
    assert metrics["distill/kept_average"] in (0.0, 1.0)
    assert caplog.text.count("(average)") == 2  # iterations 10 and 20: both sets scored
    with safe_open(str(tmp_path / "checkpoint.safetensors"), "pt") as f:
        assert any(key.startswith("average/shadow") for key in f.keys())
    assert json.loads((tmp_path / "metrics.json").read_text())["distill/kept_average"] == metrics["distill/kept_average"]


def test_average_must_be_a_decay():
    with pytest.raises(ConfigError, match="distill.average"):
        validate(compose_cfg(["distill.average=1.5"]))

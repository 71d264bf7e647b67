"""Shared fixtures: configs composed with Hydra's compose API on tiny settings, and the offline data.

The real data used by the tests lives beside the repository in ../shared/data (see its README); point
DD_RUNNER_SHARED_DATA elsewhere if your checkout sits somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
import torch
from hydra import compose, initialize_config_module

import dd_runner.config  # noqa: F401  (registers the structured configs)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DD_RUNNER_SHARED_DATA", REPO.parent / "shared" / "data"))

# The offline MNIST split used throughout: the official test file carved into train / val / test.
MNIST_OFFLINE = [
    f"dataset.root={SHARED_DATA / 'mnist'}",
    "dataset.train_split=\"test[:7200]\"",
    "dataset.val_split=\"test[7200:8000]\"",
    "dataset.test_split=\"test[8000:]\"",
]
# Small enough for CI (2 cores), large enough to be real: LeNet, real images, a few outer steps.
TINY = ["logger=none", "distill.iterations=3", "distill.batch_size=64", "eval.nets=2", "eval.val_nets=1",
        "eval.tune_nets=1", "eval.baselines=[]", "eval.lr_grid=[0.1]", "train.epochs=1", "eval.batch_size=512"]


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: these tests read the offline data in ../shared/data "
                    "(set DD_RUNNER_SHARED_DATA to its location)")
    return path


def compose_cfg(overrides: List[str] = ()):
    with initialize_config_module("dd_runner.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture
def mnist_overrides() -> List[str]:
    shared_data("mnist")
    return list(MNIST_OFFLINE)


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch, tmp_path):
    # W&B writes only under the run directory and never calls home from the tests.
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# --- text: tokenizers trained here on the offline text, tiny "pretrained" models saved to disk -------------
@pytest.fixture(scope="session")
def tokenizers(tmp_path_factory):
    from text_helpers import bpe_tokenizer, wordpiece_tokenizer

    shared_data("ag_news", "test.csv"), shared_data("english_quotes", "english_quotes.csv")
    root = tmp_path_factory.mktemp("tokenizers")
    return {"wordpiece": wordpiece_tokenizer(root / "wordpiece"), "bpe": bpe_tokenizer(root / "bpe")}


@pytest.fixture(scope="session")
def pretrained_dirs(tmp_path_factory, tokenizers):
    """Local directories in the layout of hub models: a tiny DistilBERT body (no classifier head, as
    distilbert-base-uncased) and a tiny GPT-Neo causal LM, each with its tokenizer."""
    from text_helpers import save_tiny_pretrained

    root = tmp_path_factory.mktemp("pretrained")
    return {"distilbert": save_tiny_pretrained("distilbert", tokenizers["wordpiece"], root / "distilbert"),
            "gpt_neo": save_tiny_pretrained("gpt_neo", tokenizers["bpe"], root / "gpt_neo")}


def results(metrics: dict) -> dict:
    """metrics.json without its measurements of cost (wall time, peak memory), which no two runs share."""
    return {k: v for k, v in metrics.items() if "seconds" not in k and "peak_memory" not in k}

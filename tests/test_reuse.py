"""A distilled set travels: `load_distilled(path)` alone (no run directory internals) rebuilds the
network it was distilled for, trains it by the run's protocol and reproduces the run's test figure;
bad files are one clear error."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from dd_runner import load_distilled
from dd_runner.core.errors import DataError
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data

FIXED = ["init=fixed", "distill.steps=1", "distill.epochs=3", "distill.iterations=40", "distill.batch_size=256",
         "distill.lr=0.05", "distill.decay_every=1000", "eval.every=20", "device=cpu"]


@pytest.fixture(scope="module")
def fixed_set(tmp_path_factory):
    shared_data("mnist")
    out = tmp_path_factory.mktemp("fixed_set")
    metrics = run(compose_cfg(MNIST_OFFLINE + TINY + FIXED + [f"output_dir={out}"]))
    return out, metrics


def test_fixed_init_set_reproduces_its_figure_with_the_public_api(fixed_set):
    out, metrics = fixed_set
    distilled = load_distilled(out / "distilled.safetensors")
    net = distilled.model()  # the LeNet at the theta_0 it was distilled for
    distilled.train(net)
    acc = distilled.evaluate(net, distilled.test_data())["acc"]
    assert acc == pytest.approx(metrics["test/acc_mean"], abs=1e-3)
    assert acc > 0.3  # the set teaches something: far above chance (10%)
    assert distilled.metrics["test/acc_mean"] == metrics["test/acc_mean"]
    # a fresh network (another theta_0) does not get the figure: theta_0 is what the file adds
    other = distilled.model()
    torch.manual_seed(123)
    for p in other.parameters():
        torch.nn.init.normal_(p, std=0.05)
    assert distilled.evaluate(distilled.train(other), distilled.test_data())["acc"] < acc - 0.1


def test_the_header_says_how_the_set_was_made(fixed_set):
    out, metrics = fixed_set
    d = load_distilled(out / "distilled.safetensors")
    assert d.config["init"]["mode"] == "fixed" and d.config["model"]["name"] == "lenet"
    assert d.protocol["schedule"] == "distilled" and d.protocol["lr"] is None and d.protocol["seed"] == 0
    assert set(d.provenance) >= {"dd_runner", "git_commit", "torch", "transformers"}
    assert len(d.metadata["config_hash"]) == 64 and d.metadata["init_state"] == "embedded"
    assert json.loads(d.metadata["model_config"])["arch"] == "lenet"
    assert d.normalise(torch.full((1, 1, 2, 2), 0.1307)).abs().max() < 1e-6
    assert not (out / "init.safetensors").exists()


def test_random_init_set_reproduces_within_its_std(mnist_overrides, tmp_path):
    cfg = compose_cfg(mnist_overrides + TINY + ["init=random", "distill.steps=2", "distill.epochs=2",
                                                "distill.iterations=10", "eval.nets=4", "device=cpu",
                                                f"output_dir={tmp_path}"])
    metrics = run(cfg)
    d = load_distilled(tmp_path / "distilled.safetensors")
    test = d.test_data()
    accs = [d.evaluate(d.train(d.model(seed=s)), test)["acc"] for s in range(4)]
    assert len(set(accs)) > 1  # fresh draws of p(theta), not one network
    assert abs(statistics.fmean(accs) - metrics["test/acc_mean"]) <= max(metrics["test/acc_std"], 0.01)


def test_train_schedule_with_a_tuned_lr_is_reproduced(mnist_overrides, tmp_path):
    """eval.schedule=train (the matching methods' protocol): the tuned lr and the minibatch order travel."""
    cfg = compose_cfg(mnist_overrides + TINY + FIXED + [
        "distill.iterations=10", "eval.schedule=train", "eval.train_epochs=4", "eval.train_batch=4",
        "eval.lr_grid=[0.01,0.1]", f"output_dir={tmp_path}"])
    metrics = run(cfg)
    d = load_distilled(tmp_path / "distilled.safetensors")
    assert d.protocol["lr"] == metrics["test/lr"] and d.protocol["schedule"] == "train"
    net = d.train(d.model())
    assert d.evaluate(net, d.test_data())["acc"] == pytest.approx(metrics["test/acc_mean"], abs=1e-3)


def test_large_initial_weights_go_beside_the_set(fixed_set, tmp_path, monkeypatch):
    """A network too large to embed: theta_0 in init.safetensors, named and hashed in the header."""
    from dd_runner.runtime import portable

    out, metrics = fixed_set
    monkeypatch.setattr(portable, "EMBED_LIMIT", 10)
    cfg = compose_cfg(MNIST_OFFLINE + TINY + FIXED + ["distill.iterations=2", "eval.every=0",
                                                      f"output_dir={tmp_path}"])
    metrics = run(cfg)
    d = load_distilled(tmp_path / "distilled.safetensors")
    assert d.metadata["init_state"] == "init.safetensors" and (tmp_path / "init.safetensors").is_file()
    assert d.evaluate(d.train(d.model()), d.test_data())["acc"] == pytest.approx(metrics["test/acc_mean"], abs=1e-3)
    (tmp_path / "init.safetensors").write_bytes((out / "distilled.safetensors").read_bytes())
    with pytest.raises(DataError, match="sha256 differs"):
        load_distilled(tmp_path / "distilled.safetensors")
    (tmp_path / "init.safetensors").unlink()
    with pytest.raises(DataError, match="init.safetensors beside it, which is missing"):
        load_distilled(tmp_path / "distilled.safetensors")


def test_truncated_or_foreign_files_are_one_clear_error(fixed_set, tmp_path):
    out, _ = fixed_set
    payload = (out / "distilled.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(payload[: len(payload) // 2])
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "text.safetensors").write_text("not a tensor file")
    for name, message in [("truncated", "not a readable safetensors file"), ("foreign", "not a distilled set"),
                          ("text", "not a readable safetensors file"), ("missing", "does not exist")]:
        with pytest.raises(DataError, match=message) as e:
            load_distilled(tmp_path / f"{name}.safetensors")
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("init", ["fixed", pytest.param("random", marks=pytest.mark.slow)])
def test_text_set_rebuilds_its_transformer(tokenizers, tmp_path, init):
    """Text: the transformers model (with its head) from the header alone, trained on input embeddings."""
    from text_helpers import AGNEWS_TINY, TEXT_TINY, tiny_model

    cfg = compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + [
        f"init={init}", "eval.baselines=[]", f"output_dir={tmp_path}"])
    metrics = run(cfg)
    d = load_distilled(tmp_path / "distilled.safetensors")
    test = d.test_data()
    accs = [d.evaluate(d.train(d.model(seed=s)), test)["acc"] for s in range(2)]
    if init == "fixed":
        assert type(d.model()).__name__ == "DistilBertForSequenceClassification"
        assert accs[0] == accs[1] == pytest.approx(metrics["test/acc_mean"], abs=1e-3)
    else:  # a fresh head per seed on the run's fixed body (the word-embedding table: the synthetic space)
        a, b = (dict(d.model(seed=s).named_parameters()) for s in (0, 1))
        assert not torch.equal(a["classifier.weight"], b["classifier.weight"])
        assert torch.equal(a["distilbert.embeddings.word_embeddings.weight"], b["distilbert.embeddings.word_embeddings.weight"])
        assert all(0.0 <= acc <= 1.0 for acc in accs)

"""dd-run end to end on real offline text with tiny transformers on CPU: AG News x DistilBERT and
english_quotes x GPT-Neo with every label type and init mode, attention labels, mode=train feeding
init=pretrained, method=logit_match, and the artefacts every text run writes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from dd_runner import load_distilled
from dd_runner.run import run

from conftest import REPO, compose_cfg
from text_helpers import AGNEWS_TINY, QUOTES_TINY, TEXT_TINY, TINY_CONFIGS, tiny_model

# Every label type and every init mode on each dataset (a Latin square keeps it to three runs each).
AGNEWS_CASES = [("hard", "fixed"), ("soft", "random"), ("unrestricted", "pretrained")]
QUOTES_CASES = [("hard", "pretrained"), ("soft", "fixed"), ("unrestricted", "random")]


def read_artefacts(out):
    metrics = json.loads((out / "metrics.json").read_text())
    with safe_open(str(out / "distilled.safetensors"), "pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    with open(out / "distilled_text.csv", newline="") as f:
        view = list(csv.DictReader(f))
    return metrics, tensors, meta, view


def check_labels(targets: torch.Tensor, label_type: str) -> None:
    one_hot = (targets == targets.max(-1, keepdim=True).values).float()
    if label_type == "hard":
        assert torch.equal(targets, one_hot)
    else:  # learned: moved away from their one-hot start in three outer steps
        assert not torch.allclose(targets, one_hot, atol=1e-6)
    if label_type == "soft":
        torch.testing.assert_close(targets.sum(-1), torch.ones(targets.shape[:-1]))


@pytest.mark.parametrize("labels, init", AGNEWS_CASES)
def test_agnews_distilbert(tokenizers, pretrained_dirs, tmp_path, labels, init):
    model = ["model=distilbert", f"model.name_or_path={pretrained_dirs['distilbert']}"]  # tiny pretrained body
    cfg = compose_cfg(AGNEWS_TINY + TEXT_TINY + model + [f"labels={labels}", f"init={init}", f"output_dir={tmp_path}"])
    run(cfg)
    metrics, tensors, meta, view = read_artefacts(tmp_path)
    assert metrics["test/n_nets"] == (2 if init == "random" else 1)  # random: unseen heads
    for key in ("test/acc_mean", "test/acc_std", "val/acc_mean", "baselines/random_real/acc_mean"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert tensors["data"].shape == (2, 4, 12, 32)  # steps x (classes * ipc) x seq_len x hidden
    assert tensors["targets"].shape == (2, 4, 4) and tensors["lrs"].shape == (2,)
    check_labels(tensors["targets"], labels)
    assert {"synthetic_space": "inputs_embeds", "label_type": labels, "init_mode": init, "seq_len": "12"}.items() <= meta.items()
    assert len(view) == 8 and [row["class"] for row in view[:4]] == ["World", "Sports", "Business", "Sci/Tech"]
    assert all(len(row["nearest_tokens"].split()) == 12 and 0 < float(row["mean_cosine"]) <= 1 for row in view)


@pytest.mark.parametrize("method", ["gradient_matching", "distribution_matching"])
def test_matching_methods_on_agnews(tokenizers, tmp_path, method):
    """Gradient and distribution matching distil AG News in the embedding space of a transformer (its
    [CLS] features for distribution matching) and write the same artefacts as Algorithm 1."""
    extra = ["eval.train_epochs=5"]  # their evaluation protocol (eval.schedule=train), shortened
    extra += ["method.outer_loop=2", "method.inner_loop=1"] if method == "gradient_matching" else []
    cfg = compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"])
                      + [f"method={method}", f"output_dir={tmp_path}"] + extra)
    run(cfg)
    metrics, tensors, _, view = read_artefacts(tmp_path)
    assert 0.0 <= metrics["test/acc_mean"] <= 1.0 and metrics["test/n_nets"] == 2
    assert tensors["data"].shape == (2, 4, 12, 32) and len(view) == 8
    initial = compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]))
    from dd_runner.data import load_data
    from dd_runner.core.device import Precision
    from dd_runner.models import build_learner
    from dd_runner.synthetic.build import make_synthetic

    data = load_data(initial.dataset, initial.model)
    learner = build_learner(initial.model, data, torch.device("cpu"), Precision("fp32", torch.device("cpu")), initial.distill)
    start = make_synthetic(initial, data, learner, initial.seed).data.detach()
    assert not torch.allclose(tensors["data"], start)  # the method moved the synthetic embeddings


@pytest.mark.parametrize("labels, init", QUOTES_CASES)
def test_english_quotes_gpt_neo(tokenizers, pretrained_dirs, tmp_path, labels, init):
    # fixed / random need something to draw: a random-weight GPT-Neo; pretrained: the saved tiny LM
    model = (["model=gpt_neo", f"model.name_or_path={pretrained_dirs['gpt_neo']}"] if init == "pretrained"
             else tiny_model("gpt_neo", tokenizers["bpe"]))
    cfg = compose_cfg(QUOTES_TINY + TEXT_TINY + model + [f"labels={labels}", f"init={init}", "distill.ipc=3",
                                                         "distill.engine=recompute", f"output_dir={tmp_path}"])
    run(cfg)
    metrics, tensors, meta, view = read_artefacts(tmp_path)
    for prefix in ("test", "baselines/untrained", "baselines/random_real", "baselines/random_real_learned_lrs"):
        assert metrics[f"{prefix}/ppl_mean"] > 1.0 and 0.0 <= metrics[f"{prefix}/acc_mean"] <= 1.0, prefix
        assert metrics[f"{prefix}/n_nets"] == (2 if init == "random" else 1)
    vocab = 800
    assert tensors["data"].shape == (2, 3, 8, 32) and tensors["targets"].shape == (2, 3, 8, vocab)
    check_labels(tensors["targets"], labels)
    assert meta["task"] == "language_modeling"
    assert len(view) == 6 and all(len(row["label"].split()) == 8 for row in view)  # the target token per position


@pytest.mark.parametrize("attention", ["cls", "all"])
def test_attention_labels_are_learned_and_saved(tokenizers, tmp_path, attention):
    cfg = compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + [
        "labels=unrestricted", f"labels.attention={attention}", "labels.attention_weight=2.0", "distill.lr=0.05",
        "eval.baselines=[]", f"output_dir={tmp_path}"])
    run(cfg)
    distilled = load_distilled(tmp_path / "distilled.safetensors")
    labels = distilled.extras["attention_labels"]
    layers, heads, S = TINY_CONFIGS["distilbert"]["n_layers"], TINY_CONFIGS["distilbert"]["n_heads"], 12
    assert labels.shape == (2, 4, layers, heads, S) + ((S,) if attention == "all" else ())
    torch.testing.assert_close(labels.sum(-1), torch.ones(labels.shape[:-1]))
    assert distilled.extras["attention_weight"].item() == 2.0 and distilled.metadata["attention_labels"] == attention


def test_text_train_mode_checkpoint_feeds_pretrained_init(tokenizers, tmp_path):
    model = tiny_model("distilbert", tokenizers["wordpiece"])
    trained = run(compose_cfg(AGNEWS_TINY + TEXT_TINY + model + ["mode=train", "train.epochs=1", "train.lr=1e-3",
                                                                 f"output_dir={tmp_path / 'train'}"]))
    assert 0.0 <= trained["test/acc"] <= 1.0
    metrics = run(compose_cfg(AGNEWS_TINY + TEXT_TINY + model + [
        "init=pretrained", f"init.checkpoint={tmp_path / 'train' / 'model.safetensors'}", f"output_dir={tmp_path / 'distill'}"]))
    assert metrics["test/n_nets"] == 1


def test_logit_match(tokenizers, tmp_path):
    cfg = compose_cfg(QUOTES_TINY + TEXT_TINY + tiny_model("gpt_neo", tokenizers["bpe"]) + [
        "method=logit_match", "distill.ipc=3", "eval.every=3", f"output_dir={tmp_path}"])
    metrics = run(cfg)
    for key in ("logit_match/val_kl", "test/kl", "baselines/random_real/kl", "test/ppl_mean"):
        assert metrics[key] > 0, key
    with open(tmp_path / "distilled_dataset.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(row["text"] for row in rows)  # steps x ipc sequences, decoded predictions
    distilled = load_distilled(tmp_path / "distilled.safetensors")
    assert distilled.data.shape == (2, 3, 8, 32) and distilled.metadata["method"] == "logit_match"


def test_logit_matching_objective_decreases():
    from dd_runner.methods.logit_match import pair_kl
    from test_text_engines import SEQ, real_tokens, tiny_lm

    learner, real = tiny_lm(), real_tokens(n=4, length=SEQ, classes=False)
    real.mask = torch.ones_like(real.inputs)
    theta = learner.draw(1)
    x = learner.noise((4, SEQ, 8), torch.Generator().manual_seed(0)).double().requires_grad_()
    opt = torch.optim.Adam([x], lr=0.05)
    losses = []
    for _ in range(30):
        loss = pair_kl(learner, theta, x, real)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dd_run_command_line_on_text(tokenizers, tmp_path):
    """The headline command through the real CLI (Hydra), tiny and offline."""
    overrides = AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + [
        "eval.baselines=[]", "distill.iterations=1", f"output_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    proc = subprocess.run([sys.executable, "-m", "dd_runner", *overrides], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "distilled_text.csv").is_file()


def test_logit_match_resumes_exactly(tokenizers, tmp_path):
    """logit_match checkpoints like performance matching: 2 iterations, then a resume to 4, equals 4."""
    base = QUOTES_TINY + TEXT_TINY + tiny_model("gpt_neo", tokenizers["bpe"]) + [
        "method=logit_match", "init=fixed", "eval.baselines=[]", "eval.every=1", "checkpoint.every=1"]
    run(compose_cfg(base + ["distill.iterations=4", f"output_dir={tmp_path / 'straight'}"]))
    run(compose_cfg(base + ["distill.iterations=2", f"output_dir={tmp_path / 'stopped'}"]))
    run(compose_cfg(base + [f"resume={tmp_path / 'stopped'}"]), resume_overrides=["distill.iterations=4"])
    for name in ("distilled.safetensors", "distilled_dataset.csv"):
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "stopped" / name).read_bytes(), name

"""The meta-gradient through a tiny transformer: against finite differences in float64 (DistilBERT with
unrestricted labels and attention labels), unroll == recompute with attention labels and for GPT-Neo,
and attention labels changing the gradient."""

from __future__ import annotations

import pytest
import torch

from dd_runner.data.bundle import Split
from dd_runner.core.device import Precision
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.models.learner import Step
from dd_runner.models.transformer import CausalLMLearner, TextClassifierLearner
from dd_runner.synthetic.set import SyntheticSet
from dd_runner.synthetic.text import AttentionLabelledSet

CPU = torch.device("cpu")
VOCAB, SEQ, HIDDEN, CLASSES = 40, 5, 8, 3


def tiny_classifier() -> TextClassifierLearner:
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, hidden_dim=16, n_layers=2, n_heads=2, max_position_embeddings=16,
                              num_labels=CLASSES, dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    module = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager").double()
    return TextClassifierLearner(module, CPU, Precision("fp32", CPU), head=[n for n, _ in module.named_parameters()],
                                 pretrained=False, seq_len=SEQ)


def tiny_lm() -> CausalLMLearner:
    from transformers import AutoModelForCausalLM, GPTNeoConfig

    torch.manual_seed(0)
    config = GPTNeoConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=2, num_heads=2, intermediate_size=16,
                          attention_types=[[["global", "local"], 1]], max_position_embeddings=16, window_size=4,
                          embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0)
    module = AutoModelForCausalLM.from_config(config, attn_implementation="eager").double()
    return CausalLMLearner(module, CPU, Precision("fp32", CPU), head=[n for n, _ in module.named_parameters()],
                           pretrained=False, seq_len=SEQ)


def real_tokens(n: int = 12, length: int = 7, classes: bool = True) -> Split:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (n, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[::3, -2:] = 0  # some padded examples
    return Split(ids.masked_fill(mask == 0, 0), torch.randint(0, CLASSES, (n,), generator=gen) if classes else None, mask)


def attention_set(attention: str = "cls", weight: float = 1.0, steps: int = 2, epochs: int = 1) -> AttentionLabelledSet:
    torch.manual_seed(3)
    shape = (steps, CLASSES, 2, 2, SEQ) + ((SEQ,) if attention == "all" else ())
    synth = AttentionLabelledSet(steps, epochs, CLASSES, 1, (SEQ, HIDDEN), label_type="unrestricted", init_lr=0.3,
                                 attention_weight=weight, attention_logits=torch.randn(shape))
    return synth.double()


@pytest.mark.parametrize("engine", ["unroll", "recompute"])
@pytest.mark.parametrize("attention", ["cls", "all"])
def test_transformer_meta_gradient_matches_finite_differences(engine, attention):
    learner, real = tiny_classifier(), real_tokens()
    synth = attention_set(attention)
    thetas = [learner.draw(1)]
    meta = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions())
    assert [g.shape for g in meta.grads] == [p.shape for p in synth.learnable()]
    eps = 1e-6
    for param, grad in zip(synth.learnable(), meta.grads):  # data, lrs, labels, attention labels
        flat = param.data.view(-1)
        for i in {0, flat.numel() // 2, flat.numel() - 1}:
            old = flat[i].item()
            flat[i] = old + eps
            plus = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions()).loss
            flat[i] = old - eps
            minus = ENGINES.get(engine)(learner, thetas, synth, real, EngineOptions()).loss
            flat[i] = old
            assert grad.view(-1)[i].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("accumulate", [False, True])
def test_recompute_equals_unroll_with_attention_labels(accumulate):
    learner, real = tiny_classifier(), real_tokens()
    synth = attention_set("all", steps=2, epochs=2)
    thetas = [learner.draw(4), learner.draw(5)]
    a = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions(accumulate_loss=accumulate))
    b = ENGINES.get("recompute")(learner, thetas, synth, real, EngineOptions(accumulate_loss=accumulate, recompute_every=2))
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    for ga, gb in zip(a.grads, b.grads):
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


def test_attention_labels_change_the_meta_gradient():
    learner, real = tiny_classifier(), real_tokens()
    theta = [learner.draw(2)]
    off = ENGINES.get("unroll")(learner, theta, attention_set("cls", weight=0.0), real, EngineOptions()).grads
    on = ENGINES.get("unroll")(learner, theta, attention_set("cls", weight=5.0), real, EngineOptions()).grads
    assert torch.count_nonzero(off[3]) == 0  # weight 0: the attention labels have no effect ...
    assert on[3].abs().max() > 1e-8  # ... with a weight they get a meta-gradient of their own
    assert not torch.allclose(off[0], on[0], rtol=1e-3)  # and they change the data's meta-gradient


@pytest.mark.parametrize("label_type", ["hard", "soft", "unrestricted"])
def test_language_model_recompute_equals_unroll(label_type):
    learner, real = tiny_lm(), real_tokens(classes=False)
    targets = torch.nn.functional.one_hot(torch.randint(0, VOCAB, (3, 2, SEQ), generator=torch.Generator().manual_seed(5)), VOCAB)
    torch.manual_seed(6)
    synth = SyntheticSet(3, 1, 1, 2, (SEQ, HIDDEN), label_type=label_type, init_lr=0.5, initial_targets=targets).double()
    thetas = [learner.draw(8)]
    a = ENGINES.get("unroll")(learner, thetas, synth, real, EngineOptions())
    b = ENGINES.get("recompute")(learner, thetas, synth, real, EngineOptions())
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    for ga, gb in zip(a.grads, b.grads):
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)
        assert ga.abs().max() > 0


@pytest.mark.parametrize("make", [tiny_classifier, tiny_lm], ids=["distilbert", "gpt_neo"])
def test_batched_evaluation_of_transformers_matches_the_loop(make):
    """Evaluation trains and tests transformer networks together under vmap: the same metrics (acc, loss;
    language models: ppl) as one network at a time."""
    from dd_runner.eval.protocol import batchable, batched_scores, looped_scores

    learner = make()
    assert batchable(learner), learner.vmap_blocker()
    lm = learner.task == "language_modeling"
    torch.manual_seed(5)
    x = torch.randn(2, CLASSES, SEQ, HIDDEN, dtype=torch.float64)
    y = (torch.softmax(torch.randn(2, CLASSES, SEQ, VOCAB), -1) if lm else torch.eye(CLASSES).expand(2, -1, -1)).double()
    steps = [Step(x[t], y[t], torch.tensor(0.3, dtype=torch.float64)) for t in range(2)]
    thetas = [learner.draw(seed) for seed in range(3)]
    split = real_tokens(classes=not lm)
    looped = looped_scores(learner, thetas, steps, split, batch_size=8)
    batched = batched_scores(learner, thetas, steps, split, batch_size=64)
    assert len({round(m["loss"], 6) for m in looped}) == 3  # three different networks
    for a, b in zip(looped, batched):
        assert a.keys() == b.keys() and ("ppl" in a) == lm
        assert all(a[k] == pytest.approx(b[k], rel=1e-9) for k in a)

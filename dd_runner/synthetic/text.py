"""Distilled text: sequences of input embeddings (steps, examples, distill.seq_len, hidden) with

- classification: hard / soft / unrestricted class labels (as for images) and, optionally, attention
  labels (`labels.attention=cls|all`, Maekawa et al.): a learned attention distribution per layer and head
  for the first token (cls: layers x heads x S) or every token (all: layers x heads x S x S), added to the
  inner loss as labels.attention_weight * KL(label || the model's attention);
- language modelling: per-position next-token targets over the vocabulary, taken from real quotes at
  initialisation: hard (fixed token ids), soft (learned logits through softmax) or unrestricted (learned
  real vectors). The examples of a step form one group ("class") of distill.ipc sequences.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.core.errors import ConfigError
from dd_runner.core.seeding import derive_seed, generator
from dd_runner.synthetic.set import SyntheticSet, initialise_data, synthetic_options

ATTENTION_LABELS = ("none", "cls", "all")


class AttentionLabelledSet(SyntheticSet):
    """A SyntheticSet whose steps also carry attention labels (stored as logits, used through softmax)."""

    def __init__(self, *args, attention_weight: float, attention_logits: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.attention_logits = nn.Parameter(attention_logits.float().clone())  # (steps, n, layers, heads, S[, S])
        self.register_buffer("attention_weight", torch.tensor(float(attention_weight)))

    def extras(self, s: int) -> Dict[str, torch.Tensor]:
        return {"attention": self.attention_logits[s].softmax(-1), "attention_weight": self.attention_weight}

    def artefact_tensors(self) -> Dict[str, torch.Tensor]:
        return {"attention_labels": self.attention_logits.softmax(-1), "attention_weight": self.attention_weight}


@torch.no_grad()
def _model_attention(learner, data: torch.Tensor, attention: str, seed: int) -> torch.Tensor:
    """Log attention probabilities of a network drawn from p(theta) (the fixed-init theta_0 of this seed)
    on the initial synthetic data: the labels start where the model already is, so they add no loss at
    first and the meta-gradient moves them from there."""
    theta = learner.draw(derive_seed(seed, "theta0"))
    maps = []
    for x in data:  # one step batch at a time
        att = torch.stack(learner.attention_maps(theta, x), dim=1)  # (n, layers, heads, S, S)
        maps.append(att[..., 0, :] if attention == "cls" else att)
    return torch.stack(maps).clamp_min(torch.finfo(torch.float32).tiny).log()


def _classification_set(cfg, data, learner, seed: int) -> SyntheticSet:
    d, labels = cfg.distill, cfg.labels
    args = (d.steps, d.epochs, data.num_classes, d.ipc, learner.synthetic_shape(data, d))
    kwargs = synthetic_options(cfg, learner)
    if labels.attention == "none":
        synth = SyntheticSet(*args, **kwargs)
        initialise_data(synth, d.init_from, data, learner, seed)
        return synth
    if not hasattr(learner, "attention_maps"):
        raise ConfigError(f"labels.attention={labels.attention} needs a transformer classifier, not model={cfg.model.name}")
    layers, heads = learner.attention_shape()
    S = d.seq_len
    shape = (d.steps, data.num_classes * d.ipc, layers, heads, S) + ((S,) if labels.attention == "all" else ())
    synth = AttentionLabelledSet(*args, **kwargs, attention_weight=labels.attention_weight, attention_logits=torch.zeros(shape))
    initialise_data(synth, d.init_from, data, learner, seed)
    synth.attention_logits.data.copy_(_model_attention(learner, synth.data.to(learner.device, learner.dtype),
                                                       labels.attention, seed).cpu())
    return synth


def real_sequences(learner, split, count: int, seq_len: int, gen: torch.Generator):
    """`count` distinct real sequences long enough to fill seq_len inputs and seq_len next tokens, as
    (token ids split, one-hot next-token targets (count, seq_len, vocab))."""
    pool = torch.nonzero(split.mask.sum(1) >= seq_len + 1).flatten()
    if len(pool) < count:
        raise ConfigError(f"{len(pool)} training sequences have the {seq_len + 1} tokens that distill.seq_len={seq_len} "
                          f"needs (inputs + next tokens), fewer than the {count} asked for: lower distill.seq_len, "
                          f"distill.steps or distill.ipc, or raise dataset.max_length (now {split.inputs.shape[1]})")
    real = split.select(pool[torch.randperm(len(pool), generator=gen)[:count]])
    return real, F.one_hot(learner.next_tokens(real), learner.embedding.shape[0]).float()


def _language_modeling_set(cfg, data, learner, seed: int) -> SyntheticSet:
    """ipc sequences per step; their targets (and with init_from=real their inputs) come from distinct real
    training sequences."""
    d, labels = cfg.distill, cfg.labels
    S, vocab = d.seq_len, learner.embedding.shape[0]
    real, one_hot = real_sequences(learner, data.train, d.steps * d.ipc, S, generator(seed, "synthetic-init", "sequences"))
    # A one-hot logit over a whole vocabulary would be almost uniform after softmax; scaling it by log(V)
    # puts about half the mass on the real next token at init_scale=1 (as one-hot logits do for 4 classes).
    scale = labels.init_scale * (math.log(vocab) if labels.type == "soft" else 1.0)
    options = {**synthetic_options(cfg, learner), "label_init_scale": scale}
    synth = SyntheticSet(d.steps, d.epochs, 1, d.ipc, learner.synthetic_shape(data, d), **options,
                         initial_targets=one_hot.view(d.steps, d.ipc, S, vocab))
    with torch.no_grad():
        if d.init_from == "real":
            x = learner.to_synthetic_space(real.to(learner.device)).cpu()
            synth.data.copy_(x.view(d.steps, d.ipc, S, -1))
        else:
            synth.data.copy_(learner.noise(tuple(synth.data.shape), generator(seed, "synthetic-init")))
    return synth


def make_text_synthetic(cfg, data, learner, seed: int) -> SyntheticSet:
    build = _language_modeling_set if data.task == "language_modeling" else _classification_set
    return build(cfg, data, learner, seed).to(learner.device, learner.dtype)

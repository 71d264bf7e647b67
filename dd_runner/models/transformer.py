"""Learners for transformers: synthetic data enter as `inputs_embeds`, real data as token ids + mask.

The synthetic space is the *input-embedding* space: the vectors the model looks up in its word-embedding
table, before it adds position (and token-type) embeddings and applies its embedding LayerNorm. There,
(1) every synthetic vector can be read back as its nearest vocabulary token (cosine against the same
table: `distilled_text.csv`), (2) initialising from real text (`distill.init_from=real`) is a table
lookup, and (3) the model adds positions and normalises by itself, so a synthetic sequence is treated
exactly like a real one after the lookup. The synthetic attention mask is all ones.

p(theta): with `model.pretrained=true` a draw keeps the pretrained body and draws the head (the
parameters transformers created, e.g. DistilBERT's pre_classifier and classifier) from the model's own
initialisation; with `model.pretrained=false` it draws every parameter except the word-embedding table.
That table is drawn once (when the model is built, from the run's seed) and shared by all networks: it
defines the space the synthetic data live in. Draws are deterministic in their seed; the body tensors are
shared between draws (the inner loop never writes into parameters), so many sampled networks cost one body.

Trainable parameters: those the synthetic inputs reach. The word-embedding table of an encoder receives no
gradient from `inputs_embeds`, so it is left out (exactly: its inner-loop update would be zero); GPT-Neo's
table is tied to its output layer, is reached, and is trained.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dd_runner.core.device import to_device
from dd_runner.data.bundle import Split
from dd_runner.models.learner import Learner, Params, Step
from dd_runner.models.losses import soft_cross_entropy, upcast


def reached_by_inputs_embeds(module: nn.Module) -> List[str]:
    """Names of the parameters that get a gradient when the model is fed `inputs_embeds`."""
    hidden = module.get_input_embeddings().weight.shape[1]
    named = dict(module.named_parameters())
    was_training = module.training
    module.eval()
    x = torch.randn(1, 2, hidden, dtype=next(iter(named.values())).dtype)
    out = module(inputs_embeds=x)
    grads = torch.autograd.grad(out.logits.float().square().sum(), list(named.values()), allow_unused=True)
    module.train(was_training)
    return [n for n, g in zip(named, grads) if g is not None]


def hf_redraw(module: nn.Module, owners: Iterable[nn.Module]) -> None:
    """Re-initialise `owners` in place with the model's own init scheme (transformers' _init_weights).
    transformers marks loaded tensors as initialised and then skips them: the mark is removed first."""
    with torch.no_grad():
        for m in owners:
            for p in m.parameters(recurse=False):
                if hasattr(p, "_is_hf_initialized"):
                    p._is_hf_initialized = False
            module._init_weights(m)


class TransformerLearner(Learner):
    def __init__(self, module: nn.Module, device: torch.device, precision, *, head: Iterable[str], pretrained: bool,
                 seq_len: int, pad_id: int = 0):
        super().__init__(module, device, precision, weight_init="transformers", trainable=reached_by_inputs_embeds(module))
        self.seq_len, self.pad_id, self.pretrained = int(seq_len), int(pad_id), pretrained
        table = self.module.get_input_embeddings().weight
        self.embedding_name = next(n for n, p in self.module.named_parameters() if p is table)
        self.embedding = table.detach()  # the synthetic space (see the module docstring)
        self.base = self.params_from_state(dict(self.module.named_parameters()))
        head = set(head)
        self.redrawn = [n for n in self.names if n in head and n != self.embedding_name]
        # the modules whose own parameters are redrawn: transformers initialises per module
        self._owners = [m for prefix, m in self.cpu_template.named_modules()
                        if any(f"{prefix}.{n}".lstrip(".") in self.redrawn for n, _ in m.named_parameters(recurse=False))]

    # --- p(theta) ----------------------------------------------------------------------------------
    def draw(self, seed: int) -> Params:
        if not self.redrawn:  # a pretrained model without a new head: every draw is the same network
            return self.base
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            hf_redraw(self.cpu_template, self._owners)
        fresh = dict(self.cpu_template.named_parameters())
        redrawn = set(self.redrawn)
        return tuple(to_device(fresh[n].detach().to(dtype=self.dtype, copy=True), self.device) if n in redrawn else b
                     for n, b in zip(self.names, self.base))

    def pretrained_params(self) -> Optional[Params]:
        """theta_0 of init=pretrained without a checkpoint: the weights as loaded (head as created)."""
        return self.base if self.pretrained else None

    # --- the synthetic space -----------------------------------------------------------------------
    def synthetic_shape(self, data, distill_cfg) -> tuple:
        return (int(distill_cfg.seq_len), self.embedding.shape[1])

    def noise(self, shape, gen: torch.Generator) -> torch.Tensor:
        """N(mean, std) per embedding dimension, matched to the word-embedding table."""
        table = self.embedding.detach().float().cpu()
        return table.mean(0) + table.std(0) * torch.randn(shape, generator=gen)

    def fit_length(self, ids: torch.Tensor, length: int) -> torch.Tensor:
        if ids.shape[1] >= length:
            return ids[:, :length]
        return F.pad(ids, (0, length - ids.shape[1]), value=self.pad_id)

    def to_synthetic_space(self, batch: Split) -> torch.Tensor:
        """The first seq_len tokens of real examples as input embeddings ([PAD] included: a synthetic
        sequence has no mask, so a real one in its place is attended everywhere too)."""
        ids = self.fit_length(batch.inputs, self.seq_len).to(self.embedding.device)
        return F.embedding(ids, self.embedding).to(self.dtype)

    # --- forward passes ----------------------------------------------------------------------------
    def _call(self, params: Dict[str, torch.Tensor], **inputs):
        return functional_call(self.module, params, (), inputs)

    def forward_synthetic(self, params, step: Step) -> torch.Tensor:
        return self._call(params, inputs_embeds=step.x).logits

    def forward_real(self, params, batch: Split) -> torch.Tensor:
        return self._call(params, input_ids=batch.inputs, attention_mask=batch.mask).logits

    # --- features (distribution matching; herding / k-center coresets) ------------------------------
    # The last layer's hidden state of the first token: what a classifier head reads ([CLS]).
    def synthetic_features(self, params, x: torch.Tensor) -> torch.Tensor:
        return self._call(params, inputs_embeds=x, output_hidden_states=True).hidden_states[-1][:, 0]

    def real_features(self, params, batch: Split) -> torch.Tensor:
        out = self._call(params, input_ids=batch.inputs, attention_mask=batch.mask, output_hidden_states=True)
        return out.hidden_states[-1][:, 0]


def attention_kl(attentions: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """KL(target || model) of attention distributions, averaged over examples, layers, heads (and query
    positions). target (n, layers, heads, S) is the first token's attention (cls); (n, layers, heads, S, S)
    every token's (all)."""
    pred = torch.stack([upcast(a) for a in attentions], dim=1)  # (n, layers, heads, S, S)
    if target.dim() == 4:
        pred = pred[..., 0, :]
    log_pred = pred.clamp_min(torch.finfo(pred.dtype).tiny).log()
    return (torch.xlogy(target, target) - target * log_pred).sum(-1).mean()


class TextClassifierLearner(TransformerLearner):
    """Sequence classifiers; the inner loss adds attention labels when a step carries them."""

    def attention_shape(self) -> tuple:
        config = self.module.config
        return (config.num_hidden_layers, config.num_attention_heads)

    def attention_maps(self, params: Params, x: torch.Tensor) -> List[torch.Tensor]:
        """The model's attention probabilities on synthetic inputs x (eval mode, no graph)."""
        self.module.eval()
        with torch.no_grad(), self.precision.autocast():
            out = self._call(self.as_dict(params), inputs_embeds=x, output_attentions=True)
        return [upcast(a) for a in out.attentions]

    def inner_loss(self, params: Params, step: Step) -> torch.Tensor:
        target = step.extras.get("attention")
        if target is None:
            return super().inner_loss(params, step)
        self.module.train()
        with self.precision.autocast():
            out = self._call(self.as_dict(params), inputs_embeds=step.x, output_attentions=True)
        return soft_cross_entropy(out.logits, step.y) + step.extras["attention_weight"] * attention_kl(out.attentions, target)


class CausalLMLearner(TransformerLearner):
    """Causal language models: per-position next-token targets on synthetic sequences (the targets of
    position i are the distribution of the token after it), masked next-token cross-entropy on real text."""

    task = "language_modeling"

    def next_tokens(self, batch: Split) -> torch.Tensor:
        """Targets of real examples in the synthetic layout: tokens 1..seq_len (the token after each input)."""
        return self.fit_length(batch.inputs[:, 1:], self.seq_len)

    @staticmethod
    def _token_nll(logits: torch.Tensor, batch: Split) -> tuple:
        """(summed nll, correct predictions, predicted tokens) over the real tokens after the first."""
        targets = batch.inputs[:, 1:].masked_fill(batch.mask[:, 1:] == 0, -100)
        logits = upcast(logits[:, :-1])
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
        correct = ((logits.argmax(-1) == targets) & (targets != -100)).sum()
        return nll, correct, (targets != -100).sum()

    def real_loss(self, params: Params, batch: Split, train_mode: bool = False) -> torch.Tensor:
        self.module.train(train_mode)
        with self.precision.autocast():
            logits = self.forward_real(self.as_dict(params), batch)
        nll, _, count = self._token_nll(logits, batch)
        return nll / count.clamp_min(1)

    def real_loss_weight(self, batch: Split) -> torch.Tensor:
        """real_loss averages over predicted tokens, so micro-batches are weighted by their token counts
        (a device tensor: reading the count back would sync with the device once per micro-batch)."""
        return (batch.mask[:, 1:] != 0).sum().float()

    def batch_stats(self, params: Params, batch: Split) -> Dict[str, torch.Tensor]:
        self.module.eval()
        with self.precision.autocast():
            logits = self.forward_real(self.as_dict(params), batch)
        nll, correct, count = self._token_nll(logits, batch)
        return {"nll": nll, "correct": correct, "tokens": count}

    def metrics_from(self, totals: Dict[str, torch.Tensor], split: Split) -> Dict[str, float]:
        """Per-token loss, perplexity and next-token accuracy ('acc', so selection works unchanged)."""
        count = max(int(totals["tokens"].item()), 1)
        loss = totals["nll"].item() / count
        return {"acc": totals["correct"].item() / count, "loss": loss, "ppl": math.exp(min(loss, 700.0))}

    def next_token_log_probs(self, params: Params, **inputs) -> torch.Tensor:
        """log p(next token) at every position (eval mode; differentiable in inputs_embeds)."""
        self.module.eval()
        with self.precision.autocast():
            logits = self._call(self.as_dict(params), **inputs).logits
        return F.log_softmax(upcast(logits), dim=-1)

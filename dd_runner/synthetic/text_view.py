"""A readable view of distilled text: `distilled_text.csv` and the W&B table `distilled/text`.

Every synthetic embedding is shown as its nearest vocabulary token by cosine similarity against the
model's input-embedding table (the space the synthetic data live in), one row per synthetic sequence,
with its label (class distribution, or the most likely next token at every position for language
modelling), the learned lr of its step in each epoch, and the mean cosine of the tokens shown: near 1
means the sequence is close to real text, near 0 that it lives between tokens.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import List, Tuple

import torch
import torch.nn.functional as F

from dd_runner.core.files import atomic_write_bytes


@torch.no_grad()
def nearest_tokens(x: torch.Tensor, table: torch.Tensor, chunk: int = 4096) -> Tuple[torch.Tensor, torch.Tensor]:
    """(token ids, cosine similarities) of the nearest rows of `table` (V, H) for vectors x (..., H)."""
    flat = F.normalize(x.reshape(-1, x.shape[-1]).float(), dim=-1)
    rows = F.normalize(table.float(), dim=-1)
    ids, sims = [], []
    for part in flat.split(chunk):
        best = (part @ rows.T).max(-1)
        ids.append(best.indices)
        sims.append(best.values)
    return torch.cat(ids).view(x.shape[:-1]), torch.cat(sims).view(x.shape[:-1])


def tokens_text(tokenizer, ids) -> str:
    return " ".join(tokenizer.convert_ids_to_tokens([int(i) for i in ids]))


def _label(targets: torch.Tensor, data, tokenizer, label_type: str) -> str:
    if data.task == "language_modeling":  # per position: the target token with the most weight
        return tokens_text(tokenizer, targets.argmax(-1))
    if label_type == "hard":
        return data.class_names[int(targets.argmax())]
    return " | ".join(f"{name} {float(v):.3f}" for name, v in zip(data.class_names, targets))


def text_view_rows(synth, learner, data) -> Tuple[List[str], List[list]]:
    tokenizer = data.tokenizer
    ids, sims = nearest_tokens(synth.data.detach(), learner.embedding)
    targets = synth.all_targets().detach().cpu()
    lrs = synth.lrs().detach().cpu().view(synth.epochs, synth.steps)
    columns = ["step", "slot", "class", "label", "lrs", "nearest_tokens", "mean_cosine"]
    rows = []
    for s in range(synth.steps):
        lr_text = " / ".join(f"{lr:.4g}" for lr in lrs[:, s].tolist())
        for j in range(synth.examples_per_step):
            cls = "" if data.task == "language_modeling" else data.class_names[int(synth.classes[j])]
            rows.append([s, j, cls, _label(targets[s, j], data, tokenizer, synth.label_type), lr_text,
                         tokens_text(tokenizer, ids[s, j]), round(float(sims[s, j].mean()), 4)])
    return columns, rows


def write_csv(path: Path, columns: List[str], rows: List[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def save_text_view(ctx, synth) -> None:
    """distilled_text.csv in the run directory and the same rows as the W&B table distilled/text."""
    columns, rows = text_view_rows(synth, ctx.learner, ctx.data)
    write_csv(ctx.out / "distilled_text.csv", columns, rows)
    ctx.tracker.log_table("distilled/text", columns, rows)

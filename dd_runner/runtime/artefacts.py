"""Files a run leaves in its directory. Every write is atomic (temporary file + rename), so a file that
exists is complete; `metrics.json` is written last and marks a finished run.

    distilled.safetensors  data, targets, lrs, classes; metadata in the header
    metrics.json           test/acc_mean, test/acc_std, test/n_nets, baselines/<name>/..., timing
    images.png             image datasets: a row per step, a column per class, labelled with the
                           lrs the evaluation used (written after it)
    config.yaml            the resolved config

Under torchrun only rank 0 writes (the writers here do nothing on other ranks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional

import torch
from omegaconf import OmegaConf

from dd_runner.core import distributed
from dd_runner.core.files import atomic_write_bytes, save_tensors
from dd_runner.data import zca
from dd_runner.runtime import portable
from dd_runner.reuse import header

FORMAT_VERSION = str(header.FORMAT_VERSION)  # the reader (reuse/header.py) says which versions exist


def write_config(path: Path, cfg) -> None:
    atomic_write_bytes(path, OmegaConf.to_yaml(cfg, resolve=True).encode())


def distilled_metadata(cfg, data, synth) -> Dict[str, str]:
    return {
        "format": f"dd-runner/{FORMAT_VERSION}",
        "dataset": data.name, "model": cfg.model.name, "method": cfg.method.name,
        "modality": data.modality, "task": data.task,
        "normalisation": json.dumps(data.normalisation),
        "class_names": json.dumps(list(data.class_names)),
        "steps": str(synth.steps), "epochs": str(synth.epochs), "ipc": str(synth.ipc),
        "label_type": synth.label_type, "init_mode": cfg.init.mode, "seed": str(cfg.seed),
        **(text_metadata(cfg) if data.modality == "text" else {}),
    }


def text_metadata(cfg) -> Dict[str, str]:
    """What a text distilled set needs to be read back: the model (its input-embedding space) and tokenizer."""
    return {"model_name_or_path": str(cfg.model.name_or_path or ""),
            "tokenizer": str(cfg.model.tokenizer or cfg.model.name_or_path or ""),
            "seq_len": str(cfg.distill.seq_len), "synthetic_space": "inputs_embeds",
            "attention_labels": cfg.labels.attention}


def save_distilled(path: Path, cfg, data, synth, learner=None, inits=None, extra=None) -> None:
    """The set with everything needed to reuse it (runtime/portable.py); `learner` and `inits` give the
    network and theta_0 it was distilled for (without them: the set alone, as snapshots store it).
    `extra`: further header entries."""
    meta = {**distilled_metadata(cfg, data, synth), **(extra or {})}
    with torch.no_grad():
        tensors = {"data": synth.data, "targets": synth.all_targets(), "lrs": synth.lrs(), "classes": synth.classes,
                   **synth.artefact_tensors()}  # e.g. text: attention labels
        if synth.teacher is not None:  # labels=teacher: the soft targets each example is trained towards
            tensors["teacher_probs"] = teacher_probs(cfg, synth)
            meta.update(temperature=str(synth.teacher.temperature), alpha=str(synth.teacher.alpha))
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    if learner is not None:
        state, network = portable.initial_state(cfg, learner, inits)
        embedded, placement = portable.place_initial_state(Path(path).parent, state)
        tensors.update(embedded)
        tensors.update(zca.stored(getattr(data, "whitening", {})))  # dataset.zca: normalise() / dd-export need it
        meta.update(network, **placement, **portable.portable_metadata(cfg))
    save_tensors(path, tensors, meta)


def teacher_probs(cfg, synth) -> torch.Tensor:
    """The teacher's probabilities of every example, (steps, examples, classes), computed in the batches the
    evaluation labels them in (eval/protocol.py make_schedule: a step at a time as distilled, or all
    examples at once for eval.schedule=train), so a reloaded set trains on the very same numbers."""
    if cfg.eval.schedule == "train":
        flat = synth.teacher.extras(synth.data.flatten(0, 1))["teacher_probs"]
        return flat.view(*synth.data.shape[:2], *flat.shape[1:])
    return torch.stack([synth.teacher.extras(x)["teacher_probs"] for x in synth.data])


def add_results(path: Path, cfg, metrics: Dict[str, float]) -> None:
    """Rewrite the set's header with the test figures and the protocol as evaluated (a tuned lr)."""
    from safetensors import safe_open

    if not distributed.is_main():
        return
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(portable.portable_metadata(cfg, metrics))
    save_tensors(path, tensors, meta)


def evaluation_lr_text(cfg, metrics: Dict[str, float]) -> str:
    """How images.png names the lr the evaluation trained with: '' where it used the learned lrs (each row
    then shows its step's lrs), else the one fixed lr and how it was chosen."""
    lr = metrics.get("test/lr")
    if not isinstance(lr, (int, float)):
        return ""
    how = "tuned on validation" if len(cfg.eval.lr_grid) > 1 else "eval.lr_grid, not tuned"
    return f"evaluated with lr {lr:.3g} ({how}; eval.schedule={cfg.eval.schedule})"


def save_image_grid(path: Path, synth, data, cfg=None, metrics: Optional[Dict[str, float]] = None) -> None:
    """A row per step, a column per synthetic example (class order), titled with the class. The lr shown is
    the one the evaluation used (written after it, from `metrics`): the row label lists the step's learned
    lr in each epoch, or the title names the single tuned lr when the learned ones were not used."""
    if not distributed.is_main():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = zca.to_pixels(synth.data, data.normalisation, getattr(data, "whitening", {}))
    lrs = synth.lrs().detach().cpu().view(synth.epochs, synth.steps)
    targets = synth.all_targets().detach().cpu()
    fixed_lr = evaluation_lr_text(cfg, metrics or {}) if cfg is not None else ""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 1.2, 1.25 * rows + 0.3), squeeze=False)
    for s in range(rows):
        for j in range(cols):
            ax = axes[s][j]
            img = images[s, j]
            ax.imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            label = data.class_names[int(targets[s, j].argmax())]
            ax.set_title(label if synth.label_type == "hard" else f"{label} ({targets[s, j].max():.2f})", fontsize=8)
        lr_text = "" if fixed_lr else "\nlr " + "/".join(f"{lr:.3g}" for lr in lrs[:, s].tolist())
        axes[s][0].set_ylabel(f"step {s}{lr_text}", fontsize=7)
    if fixed_lr:
        fig.suptitle(fixed_lr, fontsize=8)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)

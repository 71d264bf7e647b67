"""Public API for reusing a distilled set: `dd_runner.load_distilled(path)`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.models.learner import Step
from dd_runner.synthetic.set import fixed_steps


@dataclass
class DistilledSet:
    data: torch.Tensor  # (steps, examples per step, *example shape), in the model's input space
    targets: torch.Tensor  # (steps, examples per step, classes): the label distributions trained on
    lrs: torch.Tensor  # (steps * epochs,): the learned step size of each unrolled step
    classes: torch.Tensor  # (examples per step,): the class each slot was distilled for
    epochs: int
    metadata: Dict[str, str] = field(default_factory=dict)
    teacher_probs: Optional[torch.Tensor] = None  # labels=teacher: (steps, examples, classes) at temperature T
    extras: Dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. text: attention_labels, attention_weight

    @property
    def normalisation(self) -> Dict[str, List[float]]:
        return json.loads(self.metadata.get("normalisation", "{}"))

    def steps(self) -> List[Step]:
        """The steps x epochs inner steps in training order."""
        return fixed_steps(self.data, self.targets, self.lrs, self.epochs)

    def train(self, model: nn.Module, forward: Optional[Callable] = None) -> nn.Module:
        """Train `model` in place exactly as distilled: one SGD step per inner step with its learned lr.

        `forward(model, x)` maps synthetic inputs to logits (default: `model(x)`); the loss is
        -(y * log_softmax(logits)).sum(-1).mean(), which is cross-entropy for hard labels, or the
        knowledge-distillation loss for a set distilled with labels=teacher. Text sets hold input
        embeddings: `forward=lambda m, x: m(inputs_embeds=x).logits` (language modelling: targets per
        position). Attention labels (in `extras`) are not applied here; dd-run's learner applies them.
        """
        from dd_runner.models.losses import kd_loss

        forward = forward or (lambda m, x: m(x))
        device = next(model.parameters()).device
        model.train()
        steps = len(self.data)
        for t, step in enumerate(self.steps()):
            logits = forward(model, step.x.to(device))
            if self.teacher_probs is not None:
                T, alpha = (torch.tensor(float(self.metadata[k])) for k in ("temperature", "alpha"))
                loss = kd_loss(logits, step.y.to(device), self.teacher_probs[t % steps].to(device), T, alpha)
            else:
                loss = -(step.y.to(device) * F.log_softmax(logits.float(), -1)).sum(-1).mean()
            model.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p.sub_(step.lr.to(device) * p.grad)
        return model


def load_distilled(path: str | Path) -> DistilledSet:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if not metadata.get("format", "").startswith("dd-runner/"):
        raise ValueError(f"{path} was not written by dd-runner (no dd-runner format tag in its header)")
    core = ("data", "targets", "lrs", "classes", "teacher_probs")
    return DistilledSet(data=tensors["data"], targets=tensors["targets"], lrs=tensors["lrs"],
                        classes=tensors["classes"], epochs=int(metadata["epochs"]), metadata=metadata,
                        teacher_probs=tensors.get("teacher_probs"),
                        extras={k: v for k, v in tensors.items() if k not in core})

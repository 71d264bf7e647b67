"""The losses a network is trained with on synthetic data, shared by the learners, the teacher labels and
`DistilledSet.train`: cross-entropy against any label distribution, and knowledge distillation.

Losses are computed in at least fp32: under autocast the logits arrive in bf16 / fp16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upcast(logits: torch.Tensor) -> torch.Tensor:
    """Losses are computed in at least fp32 (autocast gives bf16/fp16 logits); float64 stays float64."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-(y * log_softmax(z)).sum(-1), averaged: cross-entropy for one-hot, soft and unrestricted labels."""
    return -(target * F.log_softmax(upcast(logits), dim=-1)).sum(-1).mean()


def kd_loss(logits: torch.Tensor, hard: torch.Tensor, teacher_probs: torch.Tensor, temperature: torch.Tensor,
            alpha: torch.Tensor) -> torch.Tensor:
    logits = upcast(logits)
    log_student = F.log_softmax(logits / temperature, dim=-1)
    kl = (teacher_probs * (torch.log(teacher_probs.clamp_min(1e-12)) - log_student)).sum(-1).mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * soft_cross_entropy(logits, hard)

"""Teacher labels (`labels=teacher`): knowledge-distillation soft targets (Hinton et al. 2015).

A teacher network — a `dd-run mode=train` checkpoint of the same model config — labels every synthetic
(or baseline) input with its temperature-softened distribution. A network trained on those inputs minimises

    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, hard label)

(T^2 keeps the soft term's gradient on the scale of the hard one). The targets are constants: no gradient
flows through the teacher into the synthetic inputs.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from dd_runner.errors import ConfigError
from dd_runner.models.learner import Step, soft_cross_entropy, upcast


def kd_loss(logits: torch.Tensor, hard: torch.Tensor, teacher_probs: torch.Tensor, temperature: torch.Tensor,
            alpha: torch.Tensor) -> torch.Tensor:
    logits = upcast(logits)
    log_student = F.log_softmax(logits / temperature, dim=-1)
    kl = (teacher_probs * (torch.log(teacher_probs.clamp_min(1e-12)) - log_student)).sum(-1).mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * soft_cross_entropy(logits, hard)


class Teacher:
    def __init__(self, learner, params, temperature: float, alpha: float):
        self.learner, self.params = learner, params
        self.temperature, self.alpha = temperature, alpha

    @torch.no_grad()
    def extras(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        mode = self.learner.module.training
        self.learner.module.eval()
        with self.learner.precision.autocast():
            logits = upcast(self.learner.forward_synthetic(self.learner.as_dict(self.params), Step(x, None, None)))
        self.learner.module.train(mode)
        t = torch.tensor(self.temperature, dtype=logits.dtype, device=logits.device)
        return {"teacher_probs": (logits / t).softmax(-1), "kd_temperature": t,
                "kd_alpha": torch.tensor(self.alpha, dtype=logits.dtype, device=logits.device)}


def make_teacher(labels_cfg, learner) -> Optional[Teacher]:
    if labels_cfg.type != "teacher":
        return None
    from dd_runner.inits import load_checkpoint

    if not labels_cfg.teacher:
        raise ConfigError("labels=teacher needs labels.teacher=PATH (a model.safetensors from `dd-run mode=train`)")
    params = learner.params_from_state(load_checkpoint(labels_cfg.teacher, learner))
    return Teacher(learner, params, labels_cfg.temperature, labels_cfg.alpha)

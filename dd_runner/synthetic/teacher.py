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

from dd_runner.core.errors import ConfigError
from dd_runner.models.inits import load_checkpoint
from dd_runner.models.learner import Step
from dd_runner.models.losses import upcast


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
    if not labels_cfg.teacher:
        raise ConfigError("labels=teacher needs labels.teacher=PATH (a model.safetensors from `dd-run mode=train`)")
    params = learner.params_from_state(load_checkpoint(labels_cfg.teacher, learner, setting="labels.teacher"))
    return Teacher(learner, params, labels_cfg.temperature, labels_cfg.alpha)

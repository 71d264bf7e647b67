"""Validation during distillation trains its networks on the set exactly as the test figures do: with every
input of the inner loss the set carries (text: its attention labels), so the kept set is chosen by the
figure it will be reported with."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

import dd_runner.eval.selection as selection


def test_validation_trains_with_the_sets_attention_labels(monkeypatch):
    seen = {}

    def schedule(*args, **kwargs):
        seen.update(kwargs)
        return "schedule"

    monkeypatch.setattr(selection, "make_schedule", schedule)
    monkeypatch.setattr(selection, "accuracies", lambda learner, nets, steps, split, batch: [0.5] if steps == "schedule" else [])
    cfg = OmegaConf.create({"seed": 0, "distill": {"iterations": 10},
                            "eval": {"every": 5, "select": "best", "val_nets": 1, "augment": "none", "batch_size": 64}})
    ctx = SimpleNamespace(cfg=cfg, inits=SimpleNamespace(eval_nets=lambda count, purpose: ["theta"] * count),
                          learner=None, data=SimpleNamespace(val=None), snapshots=None)
    attention = torch.rand(1, 4, 2, 3, 8)  # steps x examples x layers x heads x positions
    synth = SimpleNamespace(data=torch.zeros(1, 4, 8, 16), epochs=1, teacher=None, lrs=lambda: torch.tensor([0.5]),
                            all_targets=lambda: torch.eye(4)[None], state_dict=lambda: {},
                            all_extras=lambda: {"attention": attention, "attention_weight": torch.tensor(1.0)})
    check = selection.ValidationSelection(ctx, synth)
    assert check.check(5, synth) == 0.5
    assert seen["extras"]["attention"] is attention and float(seen["extras"]["attention_weight"]) == 1.0

"""What a run reports it cost (dd_runner/methods/costs.py): seconds per outer iteration without validation and
checkpoints, which are reported apart, and process CPU time beside wall time; carried across a resume."""

from __future__ import annotations

import time

import pytest
import torch

from dd_runner.eval.results import cost_text
from dd_runner.eval.selection import ValidationSelection
from dd_runner.methods.costs import LoopCosts
from dd_runner.run import run

from conftest import TINY, compose_cfg

KEYS = ("distill/seconds_per_iteration", "distill/cpu_seconds", "distill/cpu_seconds_per_iteration",
        "distill/validation_seconds", "distill/checkpoint_seconds")
SLOW = 0.4  # seconds each validation is made to take


def slow_validation(monkeypatch):
    check = ValidationSelection.check

    def slow(self, *args, **kwargs):
        time.sleep(SLOW)
        return check(self, *args, **kwargs)

    monkeypatch.setattr(ValidationSelection, "check", slow)


@pytest.mark.parametrize("every, validations", [(0, 0), (1, 3), (5, 1)])
def test_seconds_per_iteration_leaves_validation_out(mnist_overrides, tmp_path, monkeypatch, every, validations):
    """eval.every=0: no validation; 1: one per iteration; 5 (more than the run's 3 iterations): one at the
    end, which the figure once included."""
    slow_validation(monkeypatch)
    metrics = run(compose_cfg(mnist_overrides + TINY + ["init=fixed", "distill.steps=1", f"eval.every={every}"]),
                  output_dir=str(tmp_path))
    assert all(k in metrics for k in KEYS)
    validation = metrics["distill/validation_seconds"]
    assert validation < 0.05 if validations == 0 else validation >= validations * SLOW
    # the parts add up to the loop's wall time: the validations' time is not in the per-iteration figure
    parts = (metrics["distill/seconds_per_iteration"] * metrics["distill/iterations"] + validation
             + metrics["distill/checkpoint_seconds"])
    assert parts == pytest.approx(metrics["distill/seconds"], abs=0.05)
    assert 0 < metrics["distill/cpu_seconds_per_iteration"] <= metrics["distill/cpu_seconds"]
    assert "s CPU" in cost_text(metrics, torch.device("cpu")) and "validation" in cost_text(metrics, torch.device("cpu"))


def test_costs_survive_a_resume():
    costs = LoopCosts()
    with costs.timing("validation"):
        time.sleep(0.05)
    sum(i * i for i in range(200_000))  # some CPU time
    state = costs.state_dict()
    later = LoopCosts()
    later.load_state_dict(state)
    assert later.parts["validation"][0] == pytest.approx(costs.parts["validation"][0])
    assert later.cpu_elapsed() >= state["cpu_seconds"] > 0
    old = LoopCosts()  # a checkpoint written before these figures existed
    old.load_state_dict({"seconds": 3.0, "loss": 0.5})
    assert old.parts == {"validation": [0.0, 0.0], "checkpoint": [0.0, 0.0]} and old.elapsed() >= 3.0

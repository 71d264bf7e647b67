"""distill.cuda_graph on a CPU (dd_runner/methods/captured_step.py): which runs may be captured and what is
said when one cannot, and the restructured step - static inputs, the next batch and networks copied in, the
update inside the step - giving the same run as the normal loop, so that capturing only adds the graph
(tests/test_cuda.py compares the captured step itself with eager on a GPU)."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import load_file

import dd_runner.methods.loop as loop
from dd_runner.core.errors import ConfigError
from dd_runner.engines.base import MetaGradient
from dd_runner.methods.captured_step import StaticStep, StepParts, capture_blocker, choose
from dd_runner.run import run

from conftest import TINY, compose_cfg

CUDA, CPU = torch.device("cuda"), torch.device("cpu")
PARTS = StepParts(inputs=lambda it: None, compute=lambda inputs, scale: None)


def cfg_with(*overrides):
    return compose_cfg(["dataset=mnist_offline", *overrides])


@pytest.mark.parametrize("overrides, reason", [
    ([], None),
    (["distill.engine=vmap", "precision=bf16"], None),
    (["distill.engine=recompute"], "distill.engine=recompute saves and restores the random state"),
    (["distill.engine=vmap_recompute"], "distill.engine=vmap_recompute"),
    (["precision=fp16"], "precision=fp16: the GradScaler"),
    (["distill.optimizer=sgd"], "distill.optimizer=sgd has no capturable mode"),
])
def test_what_can_be_captured(overrides, reason):
    blocker = capture_blocker(cfg_with(*overrides), CUDA, PARTS)
    assert blocker == reason if reason is None else reason in blocker
    assert "the device is cpu" in capture_blocker(cfg_with(*overrides), CPU, PARTS)
    assert "method=performance_matching does not split" in capture_blocker(cfg_with(*overrides), CUDA, lambda i, s: 0)


def test_auto_true_false(caplog):
    caplog.set_level(logging.INFO, logger="dd_runner.methods.captured_step")
    assert choose(cfg_with(), CUDA, PARTS) is True
    assert choose(cfg_with("distill.cuda_graph=true"), CUDA, PARTS) is True
    assert choose(cfg_with("distill.cuda_graph=false"), CUDA, PARTS) is False
    assert not caplog.records
    assert choose(cfg_with("distill.engine=recompute"), CUDA, PARTS) is False
    assert choose(cfg_with(), CPU, PARTS) is False
    said = [r.getMessage() for r in caplog.records]
    assert said == ["distill.cuda_graph=auto: the outer step runs eagerly (distill.engine=recompute saves and restores "
                    "the random state on the host between inner steps)",
                    "distill.cuda_graph=auto: the outer step runs eagerly (the device is cpu (CUDA graphs need a CUDA "
                    "device))"]
    with pytest.raises(ConfigError) as error:
        choose(cfg_with("distill.cuda_graph=true"), CPU, PARTS)
    assert str(error.value).count("\n") == 0 and "distill.cuda_graph=true cannot capture" in str(error.value)
    assert "use distill.cuda_graph=auto or false" in str(error.value)


def test_true_on_a_cpu_stops_the_run_before_any_step(mnist_overrides, tmp_path):
    with pytest.raises(ConfigError, match="the device is cpu"):
        run(compose_cfg(mnist_overrides + TINY + ["init=fixed", "distill.cuda_graph=true", "device=cpu"]),
            output_dir=str(tmp_path))
    assert not (tmp_path / "distilled.safetensors").exists()


def test_static_inputs_keep_their_storage_and_follow_the_inputs():
    batches = [(torch.full((4, 3), float(i)), [(torch.full((2,), 10.0 + i),)]) for i in range(3)]
    seen = []

    def compute(inputs, scale):
        seen.append((inputs[0].data_ptr(), inputs[0][0, 0].item(), inputs[1][0][0][0].item()))
        x = inputs[0].sum() * param
        return MetaGradient(objective=x.detach(), grads=[torch.ones(1)])

    param = torch.nn.Parameter(torch.zeros(1))
    step = StaticStep(StepParts(lambda it: batches[it], compute), [param], lambda: torch.tensor(1.0), 1.0,
                      capture=False)
    for it in range(3):
        meta, norm = step.step(it)
        assert meta.grads[0] is param.grad and norm.item() == 1.0
    assert [s[1:] for s in seen] == [(0.0, 10.0), (1.0, 11.0), (2.0, 12.0)]
    assert len({s[0] for s in seen}) == 1 and seen[0][0] not in {b[0].data_ptr() for b in batches}


@pytest.mark.parametrize("extra", [
    ["init=fixed", "distill.steps=1", "distill.epochs=3"],
    ["init=random", "distill.sample_nets=2", "distill.engine=vmap", "distill.steps=2", "labels=soft",
     "distill.accumulate_loss=true"],
])
def test_the_restructured_step_gives_the_normal_run(mnist_overrides, tmp_path, monkeypatch, extra):
    """The step on static buffers (run eagerly here) against the normal loop: the same losses and the same
    set, bit for bit, after iterations that each drew a new real batch (and new networks)."""
    overrides = mnist_overrides + TINY + extra + ["distill.iterations=4", "eval.every=2", "checkpoint.every=0"]
    normal = run(compose_cfg(overrides), output_dir=str(tmp_path / "normal"))
    made = []

    class Recording(StaticStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(loop, "choose", lambda cfg, device, objective: isinstance(objective, StepParts))
    monkeypatch.setattr(loop, "StaticStep", Recording)
    static = run(compose_cfg(overrides), output_dir=str(tmp_path / "static"))
    assert len(made) == 1 and made[0].steps == 4 and made[0].graph is None  # a CPU: eager, no graph
    assert static["distill/final_loss"] == normal["distill/final_loss"]
    assert static["test/acc_mean"] == normal["test/acc_mean"]
    a, b = (load_file(tmp_path / name / "distilled.safetensors") for name in ("normal", "static"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

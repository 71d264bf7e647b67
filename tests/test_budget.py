"""The memory budget (dd_runner/runtime/budget.py): settings that cannot fit are refused in one line naming
the setting to lower, before anything is allocated for them; the estimate stays a lower bound (below the
measured peaks, and the project's presets pass on the machines they are meant for); an out-of-memory
error names the remedies of the method and engine in use."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dd_runner.core.errors import ConfigError, RunError
from dd_runner.runtime.budget import Facts, estimate, out_of_memory

from conftest import MNIST_OFFLINE, TINY, compose_cfg

GiB = 2 ** 30
LENET_RUN = [*MNIST_OFFLINE, *TINY, "eval.snapshots=false"]


def built(overrides, tmp_path):
    """The RunContext of a config, built as run() builds it (data, network, init sampler)."""
    from dd_runner.run import build_context
    from dd_runner.runtime.tracking import Tracker

    cfg = compose_cfg([*LENET_RUN, *overrides])
    return build_context(cfg, tmp_path, Tracker(), None)


@pytest.mark.parametrize("setting, value", [("distill.ipc", 10 ** 9), ("distill.epochs", 10 ** 9),
                                            ("distill.steps", 10 ** 9), ("eval.nets", 10 ** 12),
                                            ("distill.sample_nets", 10 ** 12), ("eval.val_nets", 10 ** 12)])
def test_a_budget_that_cannot_fit_is_refused_naming_the_setting(tmp_path, setting, value):
    from dd_runner.runtime.budget import check_budget

    ctx = built(["init=random", f"{setting}={value}"], tmp_path)
    with pytest.raises(ConfigError) as caught:
        check_budget(ctx)
    message = str(caught.value)
    assert message.startswith(f"{setting}={value} cannot fit in memory: the ") and message.endswith(f"lower {setting}")
    assert "GiB" in message and "\n" not in message


def test_fixed_init_evaluates_one_network_whatever_eval_nets_says(tmp_path):
    """Fixed init trains and tests its one theta_0: a large eval.nets costs nothing, and is not refused."""
    from dd_runner.runtime.budget import check_budget

    check_budget(built(["init=fixed", f"eval.nets={10 ** 12}"], tmp_path))


def test_the_estimate_is_below_the_measured_peaks(tmp_path):
    """A lower bound: each phase of a real run (distillation, evaluation) needs at least the estimate,
    measured as run() measures it (the rise of the peak resident set over the phase)."""
    from dd_runner.core.memory import PeakMemory
    from dd_runner.eval.protocol import batchable
    from dd_runner.eval.report import evaluate
    from dd_runner.methods import METHODS
    from dd_runner.runtime.budget import facts_of
    from dd_runner.runtime.checkpoint import Checkpointer

    ctx = built(["init=random", "distill.sample_nets=2", "distill.engine=vmap", "distill.steps=3", "distill.ipc=2",
                 "distill.iterations=1", "eval.every=0"], tmp_path)
    ctx.checkpoints = Checkpointer(tmp_path, ctx.cfg, 0)
    facts = facts_of(ctx.cfg, ctx.data, ctx.learner, batchable(ctx.learner))
    assert facts.activations > 10 * facts.classes  # the network's layers, not just its logits
    bound = {phase: sum(p.bytes for p in parts) / 2 ** 20 for phase, parts in estimate(ctx.cfg, facts, True).items()}
    memory = PeakMemory(ctx.device)
    memory.start()
    synth = METHODS.get(ctx.cfg.method.name)(ctx).synth
    measured = {"distillation": memory.peak_mb()}
    memory.start()
    evaluate(ctx, synth)
    measured["evaluation"] = memory.peak_mb()
    assert bound["distillation"] > 5 and bound["evaluation"] > 5  # the estimate counts something real
    assert all(measured[phase] >= bound[phase] for phase in bound), (bound, measured)


def meta_facts(model_option: str, example_len: int, real_length: int, classes: int = 1, vocab: int = 0) -> Facts:
    """Facts of a transformer from its recorded architecture, built on the meta device (no weights, no
    download). Every parameter counts as trained: at least what the real learner counts."""
    from transformers import AutoConfig, AutoModel

    arch = OmegaConf.to_container(compose_cfg([f"model={model_option}"]).model.architecture)
    config = AutoConfig.for_model(arch.pop("model_type"), **arch)
    with torch.device("meta"):
        module = AutoModel.from_config(config)
    hidden = module.get_input_embeddings().weight.shape[1]
    return Facts(element_bytes=4, params=sum(p.numel() for p in module.parameters()),
                 drawn=sum(p.numel() for p in module.parameters()) if vocab == 0 else 0,
                 example=(example_len, hidden), classes=classes, vocab=vocab, real_length=real_length,
                 attention=(config.num_hidden_layers, config.num_attention_heads))


# (preset, overrides, device memory it is meant for in GiB): every one must pass
PRESETS = [
    ("MNIST random init, 100 nets", ["experiment=mnist_random_100"], 8),
    ("MNIST fixed init", ["experiment=mnist_fixed_10"], 8),
    ("README main command", ["init=fixed", "distill.engine=unroll"], 8),
    ("compare_methods ConvNet 10/class, GM", ["model=convnet", "method=gradient_matching", "augment=dsa",
                                              "distill.steps=1", "distill.ipc=10", "eval.nets=30"], 8),
    ("compare_methods ConvNet 10/class, DM", ["model=convnet", "method=distribution_matching", "augment=dsa",
                                              "distill.steps=1", "distill.ipc=10"], 8),
    ("compare_methods ConvNet 10/class, PM", ["model=convnet", "method=performance_matching", "distill.epochs=3",
                                              "distill.steps=10", "distill.ipc=1"], 8),
]


@pytest.mark.parametrize("name, overrides, gib", PRESETS, ids=[p[0] for p in PRESETS])
def test_image_presets_pass(tmp_path, name, overrides, gib):
    from dd_runner.eval.protocol import batchable
    from dd_runner.runtime.budget import facts_of

    ctx = built(overrides, tmp_path)
    facts = facts_of(ctx.cfg, ctx.data, ctx.learner, batchable(ctx.learner))
    for phase, parts in estimate(ctx.cfg, facts, ctx.inits.varies).items():
        assert sum(p.bytes for p in parts) < gib * GiB, (phase, [(p.name, p.bytes) for p in parts])


def test_text_presets_pass():
    """AG News at the slides' setting (DistilBERT, 100 random heads, 128 tokens, attention labels) on an
    80 GB GPU, and the GPT-Neo-125M recipe (10 steps x 4 sequences, recompute) on a 16 GB one."""
    cfg = compose_cfg(["experiment=agnews_maekawa", "init=random", "labels=unrestricted", "labels.attention=cls",
                       "dataset.max_length=128"])
    facts = meta_facts("distilbert", cfg.distill.seq_len, 128, classes=4)
    facts.drawn = 768 * 768 + 768 + 768 * 4 + 4  # a fresh head per net: pre_classifier and classifier
    for parts in estimate(cfg, facts, varies=True).values():
        assert sum(p.bytes for p in parts) < 80 * GiB
    cfg = compose_cfg(["dataset=english_quotes_offline", "model=gpt_neo"])
    assert (cfg.distill.engine, cfg.distill.steps, cfg.distill.ipc) == ("recompute", 10, 4)  # the recipe
    facts = meta_facts("gpt_neo", cfg.distill.seq_len, cfg.dataset.max_length, vocab=50257)
    phases = estimate(cfg, facts, varies=False)
    assert math.isclose(facts.params, 125e6, rel_tol=0.1)
    for parts in phases.values():
        assert sum(p.bytes for p in parts) < 16 * GiB
    assert sum(p.bytes for p in phases["distillation"]) > 11 * facts.params * 4  # 10 steps' parameters + theta_0


@pytest.mark.parametrize("overrides, names, avoids", [
    (["distill.engine=unroll"], ["distill.engine=recompute", "distill.steps x distill.epochs (now 10 x 3)"], []),
    (["distill.engine=recompute"], ["distill.real_chunk (now 0", "distill.recompute_every"], ["use distill.engine"]),
    (["distill.engine=vmap", "distill.sample_nets=8"], ["distill.vmap_chunk (now all of distill.sample_nets=8)",
                                                        "distill.engine=vmap_recompute"], []),
    (["method=gradient_matching"], ["distill.batch_size (now 1024)", "distill.ipc"], ["distill.engine", "vmap"]),
    (["method=trajectory_matching", "method.experts=x"], ["the student's unrolled steps"], ["use distill.engine"]),
    (["mode=train"], ["train.batch_size", "eval.batch_size"], ["distill."]),
])
def test_out_of_memory_names_the_remedies_of_the_method_and_engine(overrides, names, avoids):
    cfg = compose_cfg(["dataset=mnist_offline", *overrides])
    message = out_of_memory(cfg, cuda=True)
    assert all(n in message for n in names) and not any(a in message for a in avoids), message
    assert "precision=bf16" in message and "precision=bf16" not in out_of_memory(cfg, cuda=False)


def test_an_out_of_memory_run_reports_those_remedies(tmp_path, monkeypatch):
    """run() turns the allocator's error into one line for its method and engine, and failure.json says so."""
    from dd_runner import run as run_module

    def exhausted(ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setitem(run_module.MODES, "distill", exhausted)
    cfg = compose_cfg([*LENET_RUN, "distill.engine=recompute", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(RunError, match=r"^out of memory \(method=performance_matching, distill.engine=recompute\): "
                                       r"set distill.real_chunk"):
        run_module.run(cfg)
    failure = json.loads(Path(tmp_path / "run" / "failure.json").read_text())
    assert failure["type"] == "RunError" and failure["message"].startswith("out of memory (method=performance_matching")

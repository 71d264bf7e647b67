"""The config contract: every option of every group composes and validates; mistakes are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dd_runner.cli.preflight import preflight
from dd_runner.config.validate import validate
from dd_runner.core.errors import ConfigError

from conftest import compose_cfg

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["dataset", "model", "init", "labels", "method", "logger", "augment", "experiment", "search"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]
NEEDS = {  # options that only make sense together with other settings
    ("init", "pretrained"): ["init.checkpoint=model.safetensors"],
    # text options are composed with a partner of the same task
    ("dataset", "agnews"): ["model=distilbert"], ("dataset", "agnews_offline"): ["model=bert"],
    ("dataset", "english_quotes"): ["model=gpt_neo"], ("dataset", "english_quotes_offline"): ["model=gpt_neo"],
    ("dataset", "agnews_text_offline"): ["model=gpt_neo"],
    ("model", "distilbert"): ["dataset=agnews"], ("model", "bert"): ["dataset=agnews_offline"],
    ("model", "gpt_neo"): ["dataset=english_quotes"],
    ("method", "logit_match"): ["dataset=english_quotes", "model=gpt_neo"],
    ("labels", "teacher"): ["labels.teacher=model.safetensors"],
    ("method", "trajectory_matching"): ["method.experts=experts"],
}
IDENTITY = {"dataset": "name", "model": "name", "init": "mode", "labels": "type", "method": "name",
            "logger": "name", "augment": "name"}


def test_defaults_match_the_contract():
    cfg = compose_cfg()
    assert (cfg.dataset.name, cfg.model.name, cfg.init.mode, cfg.labels.type, cfg.logger.name) == (
        "mnist", "lenet", "random", "hard", "wandb")
    assert cfg.method.name == "performance_matching" and cfg.logger.mode == "offline"
    assert (cfg.seed, cfg.device, cfg.precision, cfg.distill.engine) == (0, "auto", "fp32", "unroll")
    assert cfg.eval.nets == 20
    assert set(cfg.eval.baselines) == {"random_real", "class_mean", "kmeans", "full_data"}
    for key in ("steps", "epochs", "ipc", "iterations", "lr", "init_lr", "batch_size", "sample_nets",
                "accumulate_loss", "clip_grad", "engine"):
        assert key in cfg.distill
    validate(cfg)


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"] + NEEDS.get((group, option), [])
    cfg = compose_cfg(overrides)
    assert cfg.model.modality == cfg.dataset.modality
    if group in IDENTITY:  # the option is what the config now holds (offline variants keep their dataset's name)
        assert option.startswith(str(OmegaConf.select(cfg, f"{group}.{IDENTITY[group]}")))
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


def test_experiment_presets_set_the_papers_settings():
    fixed = compose_cfg(["experiment=mnist_fixed_10"])
    assert (fixed.init.mode, fixed.distill.steps, fixed.distill.epochs, fixed.distill.ipc) == ("fixed", 1, 3, 1)
    rand = compose_cfg(["experiment=mnist_random_100"])
    assert (rand.init.mode, rand.distill.steps, rand.distill.epochs, rand.distill.ipc) == ("random", 10, 3, 1)
    # a preset is a starting point: command-line overrides still win
    assert compose_cfg(["experiment=mnist_fixed_10", "distill.iterations=7"]).distill.iterations == 7


def test_mnist_presets_carry_the_authors_budget_and_a_short_run_keeps_the_schedule():
    from dd_runner.methods.loop import decay_period

    for preset, nets in (("mnist_fixed_10", 1), ("mnist_random_100", 4)):
        d = compose_cfg([f"experiment={preset}"]).distill
        assert (d.iterations, d.batch_size, d.sample_nets, d.lr, d.decay_factor) == (23400, 1024, nets, 0.01, 0.5)
        assert decay_period(d) == 2340  # every 40 of the authors' 400 epochs
        assert decay_period(compose_cfg([f"experiment={preset}", "distill.iterations=2000"]).distill) == 200
    assert decay_period(compose_cfg(["experiment=mnist_fixed_10", "distill.decay_every=500"]).distill) == 500


def test_agnews_preset_is_the_slides_setting_and_leaves_labels_and_init_to_the_command_line():
    cfg = compose_cfg(["experiment=agnews_maekawa", "init=random", "labels=unrestricted", "labels.attention=cls"])
    d = cfg.distill
    assert (cfg.dataset.name, cfg.model.name, d.steps, d.ipc, d.init_lr, d.lr, d.clip_grad, cfg.model.dropout) == \
        ("agnews", "distilbert", 1, 1, 0.5, 0.002, 1.0, 0.0)
    assert (cfg.init.mode, cfg.labels.type, cfg.labels.attention) == ("random", "unrestricted", "cls")
    assert compose_cfg(["experiment=agnews_maekawa"]).init.mode == compose_cfg([]).init.mode  # not set by the preset


@pytest.mark.parametrize("argv, needle", [
    (["distill.stepz=3"], "unknown key 'distill.stepz' (did you mean 'distill.steps'?)"),
    (["distill.steps=abc"], "invalid value for distill.steps"),
    (["dataset=mnst"], "unknown dataset option 'mnst' (did you mean 'mnist'?)"),
    (["datset=mnist"], "did you mean 'dataset'?"),
    (["distill.steps=0"], "distill.steps=0 is out of range"),
    (["distill.lr=-0.1"], "distill.lr=-0.1 is out of range"),
    (["eval.nets=0"], "eval.nets=0 is out of range"),
    (["distill.engine=unrol"], "did you mean 'unroll'?"),
    (["seed=0,1"], "is a sweep: add -m"),
    (["-m", "seed=0,1", "distill.ipc=0"], "distill.ipc=0 is out of range"),
    (["init=pretrained"], "init=pretrained needs init.checkpoint"),
    (["eval.baselines=[random_real,kmean]"], "did you mean 'kmeans'?"),
    (["dataset.train_split=test[:10]"], "quote split slices"),
    (["dataset=agnews", "model=distilbert", "labels.attention=clss"], "did you mean 'cls'?"),
    (["labels.attention=cls"], "needs a text classification dataset"),
    (["dataset=agnews", "model=distilbert", "method=logit_match"], "needs a language-modelling dataset"),
    (["dataset=english_quotes", "model=gpt_neo", "method=logit_match", "labels=soft"], "use labels=hard"),
    (["dataset=agnews", "model=distilbert", "model.weight_init=xavier"], "weight_init=transformers"),
    (["dataset=agnews", "model=distilbert", "init=pretrained", "model.pretrained=false"], "needs pretrained weights"),
    (["dataset=agnews", "model=lenet"], "choose a text model"),
    (["dataset=agnews", "model=distilbert", "model.config_overrides={n_layers: 2}"], "'+model.config_overrides="),
])
def test_bad_overrides_are_one_clear_line(argv, needle):
    with pytest.raises(ConfigError) as e:
        preflight(argv)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_text_models_bring_their_recipe_and_the_command_line_wins():
    cfg = compose_cfg(["dataset=agnews", "model=distilbert"])
    assert (cfg.distill.steps, cfg.distill.ipc, cfg.distill.init_lr, cfg.train.lr) == (1, 1, 0.5, 3e-5)
    assert cfg.distill.seq_len == cfg.dataset.max_length == 64
    assert compose_cfg(["dataset=agnews", "model=distilbert", "distill.steps=3"]).distill.steps == 3
    lm = compose_cfg(["dataset=english_quotes", "model=gpt_neo"])
    assert (lm.distill.engine, lm.distill.steps, list(lm.eval.baselines)) == ("recompute", 10, ["random_real", "full_data"])
    assert compose_cfg().distill.steps == 10  # lenet has no recipe: the global defaults


def test_dd_run_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dd_runner", "distill.stepz=3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dd-run: error: unknown key 'distill.stepz' (did you mean 'distill.steps'?); valid keys of distill: "
        + ", ".join(sorted(compose_cfg().distill.keys()))]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs").exists()  # nothing ran


def test_help_lists_every_option_and_no_schema(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dd_runner", "--help"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    for group, option in OPTIONS:
        assert f"    {option} " in proc.stdout or proc.stdout.rstrip().endswith(option), (group, option)
    assert "base_" not in proc.stdout

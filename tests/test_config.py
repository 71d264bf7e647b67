"""The config contract: every option of every group composes and validates; mistakes are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dd_runner.config.preflight import preflight
from dd_runner.config.validate import validate
from dd_runner.errors import ConfigError

from conftest import compose_cfg

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["dataset", "model", "init", "labels", "method", "logger", "experiment", "search"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]
NEEDS = {  # options that only make sense together with other settings
    ("init", "pretrained"): ["init.checkpoint=model.safetensors"],
}


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
    model = {"image": "lenet"}
    overrides = [f"{group}={option}"] + NEEDS.get((group, option), [])
    cfg = compose_cfg(overrides)
    if group == "dataset" and cfg.dataset.modality != "image":
        pytest.skip("text datasets are checked with text models")
    assert OmegaConf.select(cfg, "model.name") == model.get(cfg.dataset.modality, cfg.model.name)
    validate(cfg)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


def test_experiment_presets_set_the_papers_settings():
    fixed = compose_cfg(["experiment=mnist_fixed_10"])
    assert (fixed.init.mode, fixed.distill.steps, fixed.distill.epochs, fixed.distill.ipc) == ("fixed", 1, 3, 1)
    rand = compose_cfg(["experiment=mnist_random_100"])
    assert (rand.init.mode, rand.distill.steps, rand.distill.epochs, rand.distill.ipc) == ("random", 10, 3, 1)
    # a preset is a starting point: command-line overrides still win
    assert compose_cfg(["experiment=mnist_fixed_10", "distill.iterations=7"]).distill.iterations == 7


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
])
def test_bad_overrides_are_one_clear_line(argv, needle):
    with pytest.raises(ConfigError) as e:
        preflight(argv)
    assert needle in str(e.value) and "\n" not in str(e.value)


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

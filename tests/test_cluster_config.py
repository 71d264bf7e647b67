"""The shipped launcher and search configs, the pre-flight check of cluster command lines, packaging."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dd_runner.config.plugins import check_plugins, optuna_defaults
from dd_runner.cli.preflight import hydra_dir, job_overrides, preflight
from dd_runner.core.errors import ConfigError

from conftest import REPO


def hydra_cfg(overrides):
    with initialize_config_module("dd_runner.conf", version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True).hydra


def test_slurm_launcher_defaults_are_documented_keys_checked_by_the_plugin_schema():
    launcher = hydra_cfg(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu"]).launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.mem_gb,
            launcher.cpus_per_task, launcher.max_num_timeout) == ("gpu", 1, 720, 32, 8, 3)
    with pytest.raises(Exception, match="timeout_min"):  # the plugin's schema still checks types
        hydra_cfg(["hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=two_hours"])
    with pytest.raises(Exception, match="partion"):  # and keys
        hydra_cfg(["hydra/launcher=submitit_slurm", "hydra.launcher.partion=gpu"])
    local = hydra_cfg(["hydra/launcher=submitit_local"]).launcher
    assert local._target_.endswith("LocalLauncher") and local.timeout_min == 720


def test_search_preset_maximises_over_the_learning_rates():
    sweeper = hydra_cfg(["search=lrs", "seed=7"]).sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.sampler.seed == 7  # seeded by the run's seed, not the clock
    assert set(sweeper.params) == {"distill.lr", "distill.init_lr"}


def test_optuna_chosen_directly_maximises_too():
    argv = ["-m", "hydra/sweeper=optuna", "distill.lr=tag(log,interval(1e-4,1e-1))"]
    assert optuna_defaults(argv)[-2:] == ["hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=${seed}"]
    assert optuna_defaults([*argv, "hydra.sweeper.direction=minimize"])[-1] == "hydra.sweeper.sampler.seed=${seed}"
    assert optuna_defaults(["seed=1"]) == ["seed=1"]
    sweeper = hydra_cfg(optuna_defaults(["hydra/sweeper=optuna", "seed=3"])).sweeper
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == 3


def test_preflight_copes_with_launchers_sweepers_and_optuna_syntax():
    preflight(["-m", "hydra/launcher=submitit_local", "hydra/sweeper=optuna", "distill.steps=1,3",
               "distill.lr=tag(log,interval(1e-4,1e-1))", "distill.init_lr=interval(0.001,0.1)"])
    assert job_overrides(["-m", "search=lrs", "distill.steps=1,3", "seed=0,1"]) == [
        ["search=lrs", "distill.steps=1", "seed=0"], ["search=lrs", "distill.steps=1", "seed=1"],
        ["search=lrs", "distill.steps=3", "seed=0"], ["search=lrs", "distill.steps=3", "seed=1"]]
    with pytest.raises(ConfigError, match="distill.stepz"):  # the other overrides are still checked
        preflight(["-m", "hydra/sweeper=optuna", "distill.lr=tag(log,interval(1e-4,1e-1))", "distill.stepz=2"])


def test_a_missing_plugin_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.") else real(name, *a))
    with pytest.raises(ConfigError, match=r"hydra-submitit-launcher: pip install 'dd-runner\[cluster\]'"):
        check_plugins(["-m", "hydra/launcher=submitit_slurm"])
    with pytest.raises(ConfigError, match="hydra-optuna-sweeper"):
        check_plugins(["-m", "search=lrs"])
    check_plugins(["-m", "seed=0,1"])


def test_hydra_dir_resolves_what_hydra_would_create():
    assert hydra_dir(["seed=1"], multirun=False).startswith("outputs/runs/")
    assert hydra_dir(["-m", "seed=1,2"], multirun=True).startswith("outputs/multirun/")
    assert hydra_dir(["hydra.run.dir=out/${seed}", "seed=4"], multirun=False) == "out/4"


def test_every_package_ships():
    """A package missing from pyproject only shows in a non-editable install (pip install .)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "dd_runner").rglob("__init__.py")}
    assert on_disk - {"dd_runner.conf"} <= listed and "dd_runner.conf" in listed
    assert project["project"]["scripts"] == {"dd-run": "dd_runner.cli:main", "dd-report": "dd_runner.sweeps.report:main",
                                           "dd-export": "dd_runner.runtime.export:main"}
    yaml_globs = project["tool"]["setuptools"]["package-data"]["dd_runner.conf"]
    shipped = {p for g in yaml_globs for p in (REPO / "conf").glob(g)}
    assert set((REPO / "conf").rglob("*.yaml")) <= shipped
    assert OmegaConf.load(REPO / "conf" / "hydra" / "launcher" / "submitit_slurm.yaml").gpus_per_node == 1

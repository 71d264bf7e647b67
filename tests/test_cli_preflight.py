"""The pre-flight check covers every way of running dd-run: options kept outside the package
(hydra.searchpath, --config-dir / -cd), Hydra's printing flags (--cfg, --resolve, --info), multiruns, and
the override forms Hydra accepts but a run must not (+key on a schema section, ~group), with quoting hints.
Runs that are not the point stop at `--cfg job` or at the check itself (in-process `dd_runner.cli.main`)."""

from __future__ import annotations

import json

import pytest
import yaml
from omegaconf import OmegaConf

from dd_runner.cli.main import main
from dd_runner.cli.preflight import job_overrides, preflight
from dd_runner.config.validate import validate
from dd_runner.core.errors import ConfigError

from cli import FAST, dd_run
from conftest import compose_cfg, shared_data

# The smallest real run: one inner step, two outer iterations, one evaluation network, no validation.
TINY_RUN = [*FAST, "distill.iterations=2", "distill.steps=1", "distill.epochs=1", "eval.nets=1", "eval.every=0",
            "eval.tune_nets=1", "eval.lr_grid=[0.1]"]


@pytest.fixture
def myconf(tmp_path):
    """A config folder of the user's: dataset=my_mnist, defined only there (mnist_offline's settings on the
    shared data), and my_bad_mnist, whose file holds a value out of range."""
    folder = tmp_path / "myconf"
    (folder / "dataset").mkdir(parents=True)
    mnist = {"defaults": ["base_dataset"], "name": "my_mnist", "loader": "idx_images", "hub_name": "MNIST",
             "root": str(shared_data("mnist")), "download": False, "train_split": "test[:7200]",
             "val_split": "test[7200:8000]", "test_split": "test[8000:]", "num_classes": 10,
             "image_shape": [1, 28, 28], "mean": [0.1307], "std": [0.3081]}
    (folder / "dataset" / "my_mnist.yaml").write_text("# MNIST, kept outside the package.\n" + yaml.safe_dump(mnist))
    (folder / "dataset" / "my_bad_mnist.yaml").write_text(yaml.safe_dump({**mnist, "num_classes": -3}))
    return folder


def one_error_line(capsys, argv):
    """Run dd-run's main in-process; return its exit code and its one stderr line."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dd-run: error: "), err
    return exit_.value.code, err[0][len("dd-run: error: "):]


def test_an_option_in_a_searchpath_folder_is_composed_checked_and_run(myconf, tmp_path):
    proc = dd_run([f"hydra.searchpath=[file://{myconf}]", "dataset=my_mnist", *TINY_RUN, "output_dir=run"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert OmegaConf.load(tmp_path / "run" / "config.yaml").dataset.name == "my_mnist"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test/n_nets"] == 1


def test_config_dir_run_into_a_quoted_path_with_spaces_and_commas(myconf, tmp_path):
    """--config-dir works like hydra.searchpath; the quoted output_dir is created as the config holds it,
    without a stray directory named after the quotes (Hydra's log and record go there too)."""
    proc = dd_run(["--config-dir", str(myconf), "dataset=my_mnist", *TINY_RUN, 'output_dir="my runs/a,b"'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "my runs" / "a,b"
    assert (run_dir / "metrics.json").is_file() and (run_dir / "dd-run.log").is_file() and (run_dir / ".hydra").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my runs", "myconf"]
    assert [p.name for p in (tmp_path / "my runs").iterdir()] == ["a,b"]


@pytest.mark.parametrize("folder", ["searchpath", "-cd", "--config-dir", "--config-dir="])
@pytest.mark.parametrize("overrides, message", [
    (["dataset=my_mnst"], "unknown dataset option 'my_mnst' (did you mean 'my_mnist'?); valid: agnews"),
    (["dataset=my_mnist", "dataset.rot=/data"], "unknown key 'dataset.rot' (did you mean 'dataset.root'?)"),
    (["dataset=my_mnist", "dataset.download=perhaps"], "invalid value for dataset.download"),
    (["dataset=my_bad_mnist"], "dataset.num_classes=-3 is out of range"),
    (["dataset=my_mnist", "+dataset.rooot=/data"], "unknown key 'dataset.rooot' (did you mean 'dataset.root'?)"),
])
def test_a_typo_with_a_user_config_folder_is_one_line_exit_2(myconf, capsys, folder, overrides, message):
    given = {"searchpath": [f"hydra.searchpath=[file://{myconf}]"], "-cd": ["-cd", str(myconf)],
             "--config-dir": ["--config-dir", str(myconf)], "--config-dir=": [f"--config-dir={myconf}"]}[folder]
    code, line = one_error_line(capsys, [*given, *overrides])
    assert code == 2 and message in line


def test_the_user_option_is_really_composed(myconf):
    for given in ([f"hydra.searchpath=[file://{myconf}]"], ["-cd", str(myconf)]):
        [cfg] = preflight([*given, "dataset=my_mnist", "dataset.val_split=\"test[7000:8000]\"", "--cfg", "job"])
        assert (cfg.dataset.name, cfg.dataset.val_split, cfg.dataset.root) == ("my_mnist", "test[7000:8000]",
                                                                                 str(shared_data("mnist")))


def test_a_missing_config_folder_is_one_line(tmp_path, capsys):
    assert one_error_line(capsys, ["--config-dir", str(tmp_path / "nowhere")]) == (
        2, f"--config-dir {tmp_path / 'nowhere'}: no such directory (it holds your <group>/<option>.yaml files)")
    code, line = one_error_line(capsys, [f"hydra.searchpath=[file://{tmp_path / 'nowhere'}]"])
    assert code == 2 and line.startswith(f"hydra.searchpath entry file://{tmp_path / 'nowhere'}: no such directory")
    code, line = one_error_line(capsys, [f"hydra.searchpath=file://{tmp_path}"])
    assert code == 2 and "takes a list of config folders" in line


def test_a_typo_with_cfg_job_is_our_one_line_not_hydras_error(myconf, tmp_path):
    proc = dd_run(["--config-dir", str(myconf), "dataset=my_mnist", "distill.stepz=3", "--cfg", "job"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dd-run: error: unknown key 'distill.stepz' (did you mean 'distill.steps'?); valid keys of distill: "
        + ", ".join(sorted(compose_cfg().distill.keys()))]
    assert proc.stdout == ""


@pytest.mark.parametrize("flags", [["--cfg", "job"], ["--cfg", "hydra"], ["--cfg=all"], ["-c", "job", "--resolve"],
                                   ["--info"], ["--info", "defaults"]])
def test_hydras_printing_flags_are_checked_too(capsys, flags):
    code, line = one_error_line(capsys, ["distill.stepz=3", *flags])
    assert code == 2 and line.startswith("unknown key 'distill.stepz'")


def test_cfg_job_with_an_output_or_resume_dir_prints_the_config_and_creates_nothing(tmp_path):
    for key in ("output_dir", "resume"):
        proc = dd_run([f"{key}={tmp_path / 'somewhere'}", "--cfg", "job"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert OmegaConf.create(proc.stdout)[key] == str(tmp_path / "somewhere")
    assert not (tmp_path / "somewhere").exists() and not (tmp_path / "outputs").exists()


def test_multirun_with_a_user_folder_is_checked_job_by_job(myconf, capsys):
    argv = ["-m", f"hydra.searchpath=[file://{myconf}]", "dataset=my_mnist,mnist_offline", "seed=0,1"]
    assert len(job_overrides(argv)) == 4 and len(preflight(argv)) == 4
    code, line = one_error_line(capsys, ["-m", f"hydra.searchpath=[file://{myconf}]", "dataset=my_mnist,my_mnst"])
    assert code == 2 and line.startswith("unknown dataset option 'my_mnst'")


@pytest.mark.parametrize("append", ["+distill.stepz=3", "++distill.stepz=3"])
def test_appending_a_key_to_a_schema_section_is_refused_like_a_typo(capsys, append):
    code, line = one_error_line(capsys, [append])
    assert code == 2 and line.startswith("unknown key 'distill.stepz' (did you mean 'distill.steps'?); valid keys of distill:")


def test_run_refuses_an_appended_key_too():
    """run() validates its config again (resume, or a caller composing its own): the same refusal."""
    with pytest.raises(ConfigError, match=r"unknown key 'eval.netz' \(did you mean 'eval.nets'\?\)"):
        validate(compose_cfg(["+eval.netz=3"]))
    with pytest.raises(ConfigError, match="unknown key 'foo'; valid keys \\(top level\\)"):
        validate(compose_cfg(["+foo=1"]))


def test_appending_to_a_key_that_exists_says_to_drop_the_plus(capsys):
    assert one_error_line(capsys, ["+distill.steps=3"]) == (
        2, "'+distill.steps=...' adds distill.steps, which the config already has: drop the '+' (distill.steps=...)")


def test_entries_of_free_form_maps_are_still_added_with_plus():
    [cfg] = preflight(["dataset=agnews", "model=distilbert", "+model.config_overrides={n_layers: 2, dim: 32}"])
    assert dict(cfg.model.config_overrides) == {"n_layers": 2, "dim": 32}
    [cfg] = preflight(["dataset=agnews", "model=distilbert", "+model.architecture.vocab_size=100"])
    assert cfg.model.architecture.vocab_size == 100 and cfg.model.architecture.model_type == "distilbert"


@pytest.mark.parametrize("argv, message", [
    (["~dataset"], "'~dataset' removes the dataset group, which every run needs: choose another option with "
                   "dataset=OPTION (dd-run --help dataset lists them)"),
    (["~distill"], "'~distill' removes the distill section, which every run needs"),
    (["~distill.steps"], "'~distill.steps' deletes distill.steps, which the schema requires: set it instead"),
])
def test_deleting_what_every_run_needs_is_one_line(capsys, argv, message):
    code, line = one_error_line(capsys, argv)
    assert code == 2 and line.startswith(message)


def test_optional_groups_and_map_entries_may_be_deleted():
    [cfg] = preflight(["experiment=mnist_fixed_10", "~experiment"])
    assert cfg.distill.iterations == compose_cfg().distill.iterations
    [cfg] = preflight(["dataset=agnews", "model=distilbert", "~model.architecture.model_type"])
    assert "model_type" not in cfg.model.architecture


def test_an_unquoted_equals_sign_says_how_to_quote(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert one_error_line(capsys, ["output_dir=a=b"]) == (
        2, "cannot parse 'output_dir=a=b': quote a value holding '=', commas, spaces or brackets for Hydra: "
           "'output_dir=\"a=b\"' (the shell removes the outer quotes)")
    code, line = one_error_line(capsys, ["output_dir=runs/a,b"])
    assert code == 2 and line.endswith("or quote a value holding a comma: 'output_dir=\"runs/a,b\"'")
    assert list(tmp_path.iterdir()) == []
    [cfg] = preflight(['output_dir="a=b"'])
    assert cfg.output_dir == "a=b"


def test_a_primary_config_of_the_user_folder_chosen_with_cn(myconf):
    (myconf / "my_experiment.yaml").write_text("defaults:\n  - config\n  - _self_\n  - override dataset: my_mnist\nseed: 7\n")
    [cfg] = preflight(["-cd", str(myconf), "-cn", "my_experiment", "--cfg", "job"])
    assert (cfg.seed, cfg.dataset.name) == (7, "my_mnist")
    with pytest.raises(ConfigError, match="distill.stepz"):
        preflight(["-cd", str(myconf), "-cn", "my_experiment", "distill.stepz=1"])

"""Every evaluation protocol travels in the set's header: `load_distilled(path)` + `model()` / `train()` /
`evaluate()` reproduce the run's reported figure — learned lrs as distilled, minibatch SGD with and without
DSA, teacher labels, an eval.models column, attention labels — and the run's own evaluation networks
(`model(net=i)`) give the very per-network accuracies the figure averages."""

from __future__ import annotations

import json
import statistics

import pytest

from dd_runner import load_distilled
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data

# one or two outer iterations and a few evaluation epochs: the runs take seconds; a small ConvNet is evaluated
# one network at a time on a CPU (as the reloaded set is), so random init reproduces per network, exactly
QUICK = TINY + ["device=cpu", "distill.iterations=2", "eval.every=0", "eval.snapshots=false", "eval.lr_grid=[0.01]"]
SMALL_CONVNET = ["model=convnet", "model.width=8", "model.depth=2"]
DM = ["method=distribution_matching", "method.batch_real=16", "eval.train_epochs=3", "eval.train_batch=4"]


def tiny_run(tmp_path, *overrides):
    shared_data("mnist")
    metrics = run(compose_cfg(MNIST_OFFLINE + QUICK + list(overrides) + [f"output_dir={tmp_path}"]))
    return load_distilled(tmp_path / "distilled.safetensors"), metrics


def per_network(d, count: int, arch=None):
    test = d.test_data()
    return [d.evaluate(d.train(d.model(net=i, arch=arch)), test)["acc"] for i in range(count)]


def assert_reproduced(accs, metrics, prefix="test"):
    """The run's figure is the mean (and std) over exactly these networks' accuracies."""
    assert statistics.fmean(accs) == metrics[f"{prefix}/acc_mean"]
    assert (statistics.stdev(accs) if len(accs) > 1 else 0.0) == metrics[f"{prefix}/acc_std"]


def test_learned_lrs_as_distilled_fixed_init(tmp_path):
    """schedule=distilled, performance matching, fixed init: theta_0 and the learned lrs give the figure."""
    d, metrics = tiny_run(tmp_path, "init=fixed", "distill.steps=2", "distill.epochs=2")
    assert d.protocol["schedule"] == "distilled" and d.evaluation_lr() is None and d.protocol["augment"] == {"name": "none"}
    accs = per_network(d, 1)
    assert_reproduced(accs, metrics)
    assert d.metadata["format"] == "dd-runner/3"


def test_train_schedule_without_augmentation(tmp_path):
    """eval.schedule=train (distribution matching, 1 image per class, random init): the run's two evaluation
    networks, trained by the run's minibatch order and tuned lr, give its two accuracies."""
    d, metrics = tiny_run(tmp_path, *SMALL_CONVNET, *DM, "init=random")
    assert d.protocol["schedule"] == "train" and d.evaluation_lr() == 0.01 == metrics["test/lr"]
    accs = per_network(d, 2)
    assert len(set(accs)) == 2  # two different networks
    assert_reproduced(accs, metrics)


def test_train_schedule_with_dsa(tmp_path):
    """eval.augment=dsa (the method's augment): the transforms and their per-minibatch seeds travel; the same
    networks trained without them score differently, so the figure needs them."""
    d, metrics = tiny_run(tmp_path, *SMALL_CONVNET, *DM, "init=random", "augment=dsa", "augment.rotate=20")
    assert d.protocol["augment"]["name"] == "dsa" and d.protocol["augment"]["rotate"] == 20.0
    accs = per_network(d, 2)
    assert_reproduced(accs, metrics)
    dc = d.to_dc()  # DC's evaluator gets the same augmentation settings under its own names
    assert dc["args"]["dsa"] is True and dc["args"]["dsa_strategy"] == "color_crop_cutout_scale_rotate"
    assert dc["args"]["dsa_param"]["ratio_rotate"] == 20.0 and dc["args"]["epoch_eval_train"] == 3
    d.metadata["protocol"] = json.dumps({**d.protocol, "augment": {"name": "none"}})
    assert per_network(d, 2) != accs


def test_an_eval_models_column(tmp_path):
    """eval.models: the other architecture's column comes back from model(arch=...) and its own tuned lr."""
    d, metrics = tiny_run(tmp_path, *SMALL_CONVNET, *DM, "init=random", "eval.nets=1", "eval.models=[mlp]",
                          "eval.lr_grid=[0.003,0.03]", "eval.tune_nets=1")
    assert d.evaluation_lr("mlp") == metrics["test/mlp/lr"] and d.protocol["models"]["mlp"]["model"]["arch"] == "mlp"
    net = d.model(arch="mlp", net=0)
    assert type(net).__name__ == "MLP"
    assert_reproduced(per_network(d, 1, arch="mlp"), metrics, "test/mlp")
    assert_reproduced(per_network(d, 1), metrics)  # and the distillation architecture's own column
    # scripts/reuse_check.py says so for any run directory, column by column
    import subprocess
    import sys

    from conftest import REPO

    check = subprocess.run([sys.executable, "scripts/reuse_check.py", str(tmp_path)], cwd=REPO, capture_output=True,
                           text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": equal") == 2 and "mlp: lr " in check.stdout


def test_teacher_labels(tmp_path):
    """labels=teacher under schedule=train: the teacher's probabilities in the file are the ones the
    evaluation trained with, so the figure is reproduced without the teacher."""
    shared_data("mnist")
    run(compose_cfg(MNIST_OFFLINE + QUICK + ["mode=train", f"output_dir={tmp_path / 'teacher'}"]))
    teacher = tmp_path / "teacher" / "model.safetensors"
    d, metrics = tiny_run(tmp_path / "run", "labels=teacher", f"labels.teacher={teacher}", "init=fixed",
                          "eval.schedule=train", "eval.train_epochs=2", "eval.train_batch=4")
    teacher.unlink()  # the set needs no teacher any more
    assert d.teacher_probs is not None and d.protocol["labels"] == "teacher"
    assert_reproduced(per_network(d, 1), metrics)


def test_attention_labels(tokenizers, tmp_path):
    """Text: a DistilBERT set with attention labels (fixed init) reproduces its figure exactly."""
    from text_helpers import AGNEWS_TINY, TEXT_TINY, tiny_model

    metrics = run(compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + [
        "init=fixed", "labels=unrestricted", "labels.attention=cls", "labels.attention_weight=2.0",
        "eval.baselines=[]", "eval.every=0", "eval.snapshots=false", f"output_dir={tmp_path}"]))
    d = load_distilled(tmp_path / "distilled.safetensors")
    assert d.protocol["attention"] == "cls" and "attention_labels" in d.extras
    assert_reproduced(per_network(d, 1), metrics)
    with pytest.raises(Exception, match="not images"):
        d.to_dc()


def test_images_png_names_the_evaluation_lr(tmp_path, monkeypatch):
    """images.png is drawn after evaluation: a tuned lr is named in its title, never the placeholder."""
    import matplotlib.figure

    titles = []
    original = matplotlib.figure.Figure.suptitle
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", lambda fig, t, **kw: titles.append(t) or original(fig, t, **kw))
    tiny_run(tmp_path / "dm", *DM, "init=fixed", "eval.lr_grid=[0.003,0.03]", "eval.tune_nets=1")
    metrics_lr = load_distilled(tmp_path / "dm" / "distilled.safetensors").evaluation_lr()
    assert titles == [f"evaluated with lr {metrics_lr:.3g} (tuned on validation; eval.schedule=train)"]
    assert (tmp_path / "dm" / "images.png").is_file()

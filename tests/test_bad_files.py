"""Files dd-run, dd-report and dd-export read back, damaged as they are in real life (cut short by a full
disk or a kill, edited by hand, of another model): each is one DataError / ConfigError naming the file,
at load time, never a parser's traceback mid-run and never silently used."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from dd_runner.core.errors import ConfigError, DataError, DDError
from dd_runner.core.files import read_safetensors, save_tensors
from dd_runner.run import run
from dd_runner.runtime.export import export

from conftest import MNIST_OFFLINE, SHARED_DATA, TINY, compose_cfg, shared_data

RUN = [*MNIST_OFFLINE, *TINY, "init=fixed", "distill.steps=2", "distill.epochs=1", "distill.iterations=2",
       "eval.every=1", "eval.nets=1", "checkpoint.every=1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real finished run directory (config.yaml, checkpoint, metrics.json, distilled.safetensors)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    run(compose_cfg([*RUN, f"output_dir={out}"]))
    return out


def retag(path, **changes):
    """Rewrite header entries of a safetensors file, as a hand edit would."""
    tensors, meta = read_safetensors(path)
    save_tensors(path, tensors, {**meta, **changes})


def cut(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


# (name, damage(run dir), what is then done: "rerun" | "resume" | "export", the file named, expected text)
DAMAGES = [
    ("metrics.json cut short, re-run", lambda d: cut(d / "metrics.json"), "rerun", "metrics.json",
     "is not a readable JSON file"),
    ("metrics.json cut short, export", lambda d: cut(d / "metrics.json"), "export", "metrics.json",
     "is not a readable JSON file"),
    ("metrics.json not an object", lambda d: (d / "metrics.json").write_text("[1, 2]"), "rerun", "metrics.json",
     "holds a JSON list, not a dict"),
    ("config.yaml garbled, resume", lambda d: (d / "config.yaml").write_text("mode: [distill\n"), "resume",
     "config.yaml", "is not a readable YAML file"),
    ("config.yaml of another program, resume", lambda d: (d / "config.yaml").write_text("learning_rate: 3\n"),
     "resume", "config.yaml", "is not a dd-run config"),
    ("checkpoint cut short, resume", lambda d: cut(d / "checkpoint.safetensors"), "resume", "checkpoint.safetensors",
     "is not a readable safetensors file"),
    ("checkpoint iteration not a number", lambda d: retag(d / "checkpoint.safetensors", iteration="two"), "resume",
     "checkpoint.safetensors", "has iteration='two' in its header"),
    ("checkpoint iteration moved back", lambda d: retag(d / "checkpoint.safetensors", iteration="1"), "resume",
     "checkpoint.safetensors", "says iteration 1 but its lr scheduler has counted 2"),
    ("checkpoint of another program", lambda d: retag(d / "checkpoint.safetensors", format="other/1"), "resume",
     "checkpoint.safetensors", "is not a dd-runner checkpoint"),
]


@pytest.mark.parametrize("name, damage, action, culprit, expected", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_damaged_run_file_is_one_line_naming_it(finished, tmp_path, name, damage, action, culprit, expected):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    if action == "resume":  # an unfinished run: resume continues from the checkpoint
        (run_dir / "metrics.json").unlink()
    damage(run_dir)
    with pytest.raises(DataError) as caught:
        if action == "rerun":
            run(compose_cfg([*RUN, f"output_dir={run_dir}"]))
        elif action == "resume":
            run(compose_cfg([f"resume={run_dir}"]))
        else:
            export(run_dir, tmp_path / "export")
    message = str(caught.value)
    assert str(run_dir / culprit) in message and expected in message and "\n" not in message, message
    assert not (tmp_path / "export").exists()


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """The LeNet learner of the MNIST runs, built as run() builds it."""
    from dd_runner.core.device import Precision
    from dd_runner.data import load_data
    from dd_runner.models import build_learner

    cfg = compose_cfg([*MNIST_OFFLINE, *TINY])
    cpu = torch.device("cpu")
    return build_learner(cfg.model, load_data(cfg.dataset, cfg.model), cpu, Precision("fp32", cpu), cfg.distill)


def other_shapes(learner):
    """The learner's parameter names with other shapes: the weights of a wider network of the same family."""
    return {n: torch.zeros(*p.shape[:-1], p.shape[-1] + 1) for n, p in learner.module.named_parameters()}


def diverged(learner):
    state = dict(zip(learner.names, (p.clone() for p in learner.draw(0))))
    state[learner.names[0]][0] = float("nan")
    return state


def experts(folder, trajectory):
    folder.mkdir()
    save_tensors(folder / "expert_000.safetensors", trajectory, {"format": "dd-runner/expert"})
    return str(folder)


def load_teacher(learner, path):
    from dd_runner.synthetic.teacher import make_teacher

    return make_teacher(compose_cfg(["labels=teacher", f"labels.teacher={path}"]).labels, learner)


def load_init(learner, path):
    from dd_runner.models.inits import load_checkpoint

    return load_checkpoint(path, learner)


def load_experts(learner, folder):
    from dd_runner.methods.experts import ExpertPool

    return ExpertPool(folder, learner, needed_epoch=1)


# (name, weights(learner) -> state, loader(learner, path), setting named, expected text, error class)
WEIGHTS = [
    ("init.checkpoint of a wider network", other_shapes, load_init, "init.checkpoint", "wrong shape conv", ConfigError),
    ("init.checkpoint with nan weights", diverged, load_init, "init.checkpoint", "holds nan or inf weights", DataError),
    ("labels.teacher of a wider network", other_shapes, load_teacher, "labels.teacher", "wrong shape conv", ConfigError),
    ("labels.teacher with nan weights", diverged, load_teacher, "labels.teacher", "holds nan or inf weights", DataError),
    ("experts of a wider network", lambda l: {f"epoch_{e:03d}/{n}": t for e in (0, 1) for n, t in other_shapes(l).items()},
     "experts", "method.experts", "wrong shape conv", ConfigError),
    ("experts with a gap", lambda l: {f"epoch_{e:03d}/{n}": t for e in (0, 2) for n, t in zip(l.names, l.draw(0))},
     "experts", "method.experts", "lacks the parameters of epochs [1]", DataError),
]


@pytest.mark.parametrize("name, weights, loader, setting, expected, error", WEIGHTS, ids=[w[0] for w in WEIGHTS])
def test_weights_that_do_not_fit_are_refused_naming_the_setting(lenet, tmp_path, name, weights, loader, setting,
                                                               expected, error):
    state = weights(lenet)
    if loader == "experts":
        path, load = experts(tmp_path / "experts", state), load_experts
    else:
        path, load = tmp_path / "model.safetensors", loader
        save_tensors(path, state, {"format": "dd-runner/model"})
    with pytest.raises(error) as caught:
        load(lenet, str(path))
    message = str(caught.value)
    assert message.startswith(f"{setting}={path}") and expected in message and "\n" not in message, message


def test_a_truncated_transformers_checkpoint_is_named_before_loading(tmp_path):
    """An interrupted download or copy of a model directory: the cut model.safetensors is named, not a
    SafetensorError from deep inside transformers."""
    from dd_runner.data.hub import minilm_stand_in
    from dd_runner.data.text import load_tokenizer
    from dd_runner.models.hf import load_module

    folder = tmp_path / "model"
    shutil.copytree(minilm_stand_in(), folder)
    cut(folder / "model.safetensors")
    cfg = compose_cfg(["dataset=agnews_offline", "model=bert", f"model.name_or_path={folder}"])
    with pytest.raises(DataError, match=f"^{folder / 'model.safetensors'} is not a readable safetensors file .*"
                                        "download or copy the model again"):
        load_module(cfg.model, load_tokenizer(cfg.model), "classification", 4)


def agnews_rows(count: int):
    return shared_data("ag_news", "test.csv").read_text().splitlines()[:count]


# (name, CSV text, extra overrides, expected text): a real AG News file, damaged
CSVS = [
    ("empty file", "\n\n", [], "which is empty"),
    ("a label that is not a whole number", "\n".join(['"2.5"' + line[3:] if i == 7 else line
                                                      for i, line in enumerate(agnews_rows(600))]), [],
     "column 'label' of {path} holds '2.5', not an integer class"),
    ("labels beyond dataset.num_classes", "\n".join(agnews_rows(600)), ["dataset.num_classes=2"],
     "labels of {path} span 0..3 but dataset.num_classes=2: raise dataset.num_classes"),
    ("a missing column", "\n".join(agnews_rows(600)), ["dataset.text_column=title+summary"],
     "column(s) ['summary'] not in {path}"),
]


@pytest.mark.parametrize("name, text, extra, expected", CSVS, ids=[c[0] for c in CSVS])
def test_text_files_that_cannot_be_used_name_the_file(tmp_path, name, text, extra, expected):
    from dd_runner.data.hub import minilm_stand_in
    from dd_runner.data.text import load_text

    path = tmp_path / "test.csv"
    path.write_text(text)
    cfg = compose_cfg(["dataset=agnews_offline", "model=bert", f"model.name_or_path={minilm_stand_in()}",
                       f"dataset.data_files.test={path}", 'dataset.train_split="test[:400]"',
                       'dataset.val_split="test[400:500]"', 'dataset.test_split="test[500:]"', *extra])
    with pytest.raises(DDError) as caught:
        load_text(cfg.dataset, cfg.model)
    assert expected.format(path=path) in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_dd_report_names_unreadable_jobs_and_refuses_unknown_metrics(tmp_path):
    """A job whose metrics.json is cut short is neither finished nor averaged: the table, report.csv and
    jobs.csv say it could not be read. A misspelt --metric and a garbled overrides.yaml are one line, exit 2."""
    from test_sweep import dd_report, read_csv, write_job

    write_job(tmp_path, "0", ["distill.steps=1", "seed=0"], {"test/acc_mean": 0.5, "val/acc_mean": 0.5})
    write_job(tmp_path, "1", ["distill.steps=1", "seed=1"], {"test/acc_mean": 0.9, "val/acc_mean": 0.9})
    cut(tmp_path / "1" / "metrics.json")
    write_job(tmp_path, "2", ["distill.steps=2", "seed=0"], {"test/acc_mean": 0.7, "val/acc_mean": 0.7})

    rep = dd_report([str(tmp_path)], tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert f"job 1: cannot read its results (distill.steps=1 seed=1): {tmp_path / '1' / 'metrics.json'} is not a " \
           "readable JSON file" in " ".join(rep.stdout.split())
    rows = {r["distill.steps"]: r for r in read_csv(tmp_path / "report.csv")}
    assert (rows["1"]["finished"], rows["1"]["not_finished"], float(rows["1"]["test_acc_mean"])) == ("1", "unreadable: 1", 0.5)
    jobs = {r["job"]: r for r in read_csv(tmp_path / "jobs.csv")}
    assert (jobs["1"]["status"], jobs["1"]["exit_code"]) == ("unreadable", "1")
    assert "metrics.json is not a readable JSON file" in jobs["1"]["message"] and jobs["0"]["status"] == "finished"

    typo = dd_report([str(tmp_path), "--metric", "test/acc_meen"], tmp_path)
    assert typo.returncode == 2 and typo.stderr.startswith(
        "dd-report: error: --metric test/acc_meen is not a number in any finished job's metrics.json (did you mean "
        "'test/acc_mean'?); valid: test/acc_mean, val/acc_mean"), typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1

    (tmp_path / "2" / ".hydra" / "overrides.yaml").write_text("- distill.steps=[2\n")
    garbled = dd_report([str(tmp_path)], tmp_path)
    assert garbled.returncode == 2 and len(garbled.stderr.strip().splitlines()) == 1, garbled.stderr
    assert garbled.stderr.startswith(f"dd-report: error: {tmp_path / '2' / '.hydra' / 'overrides.yaml'} ")


def without_permission_override():
    """A preexec_fn that makes a child process obey file permissions: root ignores them (CAP_DAC_OVERRIDE),
    so the child drops those capabilities from its bounding set before it starts (prctl PR_CAPBSET_DROP)."""
    import ctypes

    if os.geteuid() != 0:
        return None

    def drop():
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    return drop


def test_read_only_directories_are_one_line(finished, tmp_path):
    """resume= of a run directory that cannot be written (a read-only mount, another user's run), and
    dd-export into a folder that cannot be written: one line naming the directory, exit 1 (an unwritable
    output, as a full disk), no traceback, nothing half-written."""
    run_dir, locked = tmp_path / "run", tmp_path / "locked"
    shutil.copytree(finished, run_dir)
    locked.mkdir()
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA)}

    def child(*args):
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env=env, preexec_fn=without_permission_override())
    for folder in (run_dir, locked):
        folder.chmod(0o555)
    try:
        if child("-c", f"open({str(locked / 'x')!r}, 'w')").returncode == 0:
            pytest.skip("this process writes into read-only directories (it cannot drop the permission override)")
        resumed = child("-m", "dd_runner", f"resume={run_dir}")
        exported = child("-m", "dd_runner.runtime.export", str(run_dir), "--to", str(locked / "export"))
    finally:
        for folder in (run_dir, locked):
            folder.chmod(0o755)
    assert resumed.returncode == 1 and resumed.stderr.strip().splitlines() == [
        f"dd-run: error: cannot write to {run_dir}: Permission denied; copy the run directory somewhere writable and "
        "resume the copy"], resumed.stderr
    assert exported.returncode == 1 and exported.stderr.strip().splitlines() == [
        f"dd-export: error: cannot write --to {locked / 'export'}: Permission denied (the directory is not writable); "
        "choose another --to directory"], exported.stderr
    assert list(locked.iterdir()) == []

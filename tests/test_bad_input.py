"""Every bad input is one actionable line, a non-zero exit code (2: configuration, 1: runtime), no
Python traceback on the console (it goes to the run's log file), and nothing lost. Runs the real dd-run."""

from __future__ import annotations

import errno
import gzip

import pytest
import torch

from dd_runner.cli.main import describe
from dd_runner.core.errors import RunError, local_path
from dd_runner.data.hub import minilm_stand_in

from cli import FAST, dd_run
from conftest import shared_data

OFFLINE = ["dataset=mnist_offline", *FAST, "distill.iterations=2"]


def mnist_copy(tmp_path, damage=None):
    """A copy of the offline MNIST files, optionally damaged: damage(name, raw bytes) -> bytes."""
    root = tmp_path / "mnist"
    root.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.open(shared_data("mnist", name + ".gz")).read()
        (root / name).write_bytes(damage(name, raw) if damage else raw)
    return root


def truncated(tmp_path):
    return [f"dataset.root={mnist_copy(tmp_path, lambda n, raw: raw[:len(raw) // 2] if 'images' in n else raw)}"]


def corrupt_gzip(tmp_path):
    root = mnist_copy(tmp_path)
    (root / "t10k-labels-idx1-ubyte").unlink()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    return [f"dataset.root={root}"]


def empty_root(tmp_path):
    return [f"dataset.root={tmp_path / 'no-mnist-here'}"]


def corrupt_checkpoint(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 64)
    return ["init=pretrained", f"init.checkpoint={bad}"]


def unwritable_output(tmp_path):
    return [f"output_dir={a_file(tmp_path) / 'run'}"]


def a_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return blocker


def garbled_run_dir(tmp_path):
    """A run directory whose config.yaml was cut short (a full disk, a hand edit)."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("mode: distill\ndataset: {name: mni")
    return [f"resume={run_dir}"]


def minilm_on(csv_text: bytes):
    """dataset=agnews_offline read from a file with `csv_text`, tokenised by the MiniLM test extra."""
    def overrides(tmp_path):
        bad = tmp_path / "test.csv"
        bad.write_bytes(csv_text)
        return ["dataset=agnews_offline", "model=bert", f"model.name_or_path={minilm_stand_in()}",
                f"dataset.data_files.test={bad}"]
    return overrides


# (name, overrides or a function of tmp_path returning extra overrides, exit code, expected text)
CASES = [
    ("unknown group option", ["dataset=mnst"], 2, "unknown dataset option 'mnst' (did you mean 'mnist'?)"),
    ("unknown key", ["distill.stepz=3"], 2, "unknown key 'distill.stepz' (did you mean 'distill.steps'?)"),
    ("wrong type", ["distill.steps=three"], 2, "invalid value for distill.steps"),
    ("steps 0", ["distill.steps=0"], 2, "distill.steps=0 is out of range: it must be > 0"),
    ("ipc 0", ["distill.ipc=0"], 2, "distill.ipc=0 is out of range"),
    ("negative lr", ["distill.lr=-0.01"], 2, "distill.lr=-0.01 is out of range"),
    ("eval.nets 0", ["eval.nets=0"], 2, "eval.nets=0 is out of range"),
    # numbers the code cannot use: nan, inf, and values outside what each setting means (config/validate_numbers.py)
    ("nan lr", ["distill.lr=nan"], 2, "distill.lr=nan is out of range: it must be finite and > 0"),
    ("inf init_lr", ["distill.init_lr=inf"], 2, "distill.init_lr=inf is out of range: it must be finite and > 0"),
    ("nan in the lr grid", ["eval.lr_grid=[0.1,nan]"], 2, "eval.lr_grid=[0.1, nan] is out of range: it must be finite"),
    ("nan beta", ["distill.betas=[0.5,nan]"], 2, "distill.betas=[0.5, nan] is out of range: it must be finite and in [0, 1)"),
    ("nan decay factor", ["distill.decay_factor=nan"], 2, "distill.decay_factor=nan is out of range: it must be finite and in (0, 1]"),
    ("nan clip", ["distill.clip_grad=nan"], 2, "distill.clip_grad=nan is out of range"),
    ("momentum 1", ["eval.train_momentum=1.0"], 2, "eval.train_momentum=1.0 is out of range: it must be in [0, 1)"),
    ("inf weight decay", ["eval.train_weight_decay=inf"], 2, "eval.train_weight_decay=inf is out of range"),
    ("dropout above 1", ["model.dropout=1.5"], 2, "model.dropout=1.5 is out of range: it must be in [0, 1)"),
    ("nan KD alpha", ["labels.alpha=nan"], 2, "labels.alpha=nan is out of range: it must be finite and in [0, 1]"),
    ("inf temperature", ["labels.temperature=inf"], 2, "labels.temperature=inf is out of range"),
    ("DSA scale under 1", ["augment=dsa", "augment.scale=0.5"], 2, "augment.scale=0.5 is out of range: it must be >= 1"),
    ("zero std", ["dataset.std=[0.0]"], 2, "dataset.std=[0.0] is out of range: it must be > 0"),
    ("seed beyond 64 bits", ["seed=100000000000000000000000"], 2, "seed=100000000000000000000000 is out of range"),
    ("unknown weight init", ["model.weight_init=he"], 2, "unknown model.weight_init 'he'"),
    ("nan method lr", ["method=gradient_matching", "method.lr_net=nan"], 2, "method.lr_net=nan is out of range"),
    # budgets the offline split cannot fill (its smallest class has 649 training examples): found once the data is
    # loaded, before anything runs
    ("ipc beyond a class, init_from=real", ["distill.init_from=real", "distill.steps=1", "distill.ipc=1000"], 2,
     "distill.ipc=1000 is out of range for distill.init_from=real: it must be in [1, 649] with distill.steps=1"),
    ("ipc beyond a class, random real baseline", ["eval.baselines=[random_real]", "distill.steps=1", "distill.ipc=700"], 2,
     "distill.ipc=700 is out of range for eval.baselines entry random_real: it must be in [1, 649]"),
    ("unknown engine", ["distill.engine=unrol"], 2, "unknown distill.engine 'unrol' (did you mean 'unroll'?)"),
    ("unknown evaluation architecture", ["eval.models=[resnet]"], 2, "unknown eval.models entry 'resnet' (did you mean 'resnet18'?)"),
    ("sweep without -m", ["seed=0,1"], 2, "seed=0,1 is a sweep: add -m"),
    ("pretrained without checkpoint", ["init=pretrained"], 2, "init=pretrained needs init.checkpoint=PATH"),
    ("empty split", ["dataset.test_split=\"test[9000:100]\""], 2, "dataset.test_split='test[9000:100]' selects no rows"),
    ("train/test overlap", ["dataset.test_split=\"test[7000:]\""], 2,
     "dataset.train_split and dataset.test_split share 200 rows of 'test'"),
    ("baselines mode without baselines", ["mode=baselines"], 2, "mode=baselines evaluates eval.baselines, which is empty"),
    ("unquoted slice", ["dataset.test_split=test[8000:]"], 2, "quote split slices for Hydra"),
    ("no network, no local files", lambda t: ["dataset=mnist", *empty_root(t)], 2, "the download failed"),
    ("offline dataset without its files", empty_root, 2, "and dataset.download=false: set $DD_RUNNER_SHARED_DATA"),
    ("offline dataset, relative root", ["dataset.root=not/here"], 2, "not/here (= "),
    ("truncated idx file", truncated, 2, "t10k-images-idx3-ubyte is truncated or padded"),
    ("corrupt gzip", corrupt_gzip, 2, "cannot read"),
    ("corrupt checkpoint", corrupt_checkpoint, 2, "is not a readable safetensors file"),
    ("resume of nothing", lambda t: [f"resume={t / 'nowhere'}"], 2, "no config.yaml there"),
    # where a run writes: never a file, never a folder of other files (runtime/run_dir.py)
    ("output_dir that is a file", lambda t: [f"output_dir={a_file(t)}"], 2, "a-file is a file, not a directory"),
    ("hydra.run.dir that is a file", lambda t: [f"hydra.run.dir={a_file(t)}"], 2, "a-file is a file, not a directory"),
    ("resume of a file", lambda t: [f"resume={a_file(t)}"], 2, "a-file is a file, not a run directory"),
    ("resume with a garbled config.yaml", garbled_run_dir, 2, "run/config.yaml is not a readable YAML file"),
    # numbers no range reaches: 64 bits, and budgets that cannot fit in memory (runtime/budget.py)
    ("integer beyond 64 bits", ["distill.iterations=100000000000000000000"], 2,
     "distill.iterations=100000000000000000000 is out of range: it must fit in 64 bits"),
    ("a budget beyond memory", ["distill.ipc=1000000000"], 2,
     "distill.ipc=1000000000 cannot fit in memory: the distillation needs at least"),
    ("W&B online without credentials", ["logger=wandb", "logger.mode=online"], 2,
     "logger.mode=online needs W&B credentials: run `wandb login` or set WANDB_API_KEY, or use logger.mode=offline"),
    ("non-finite loss", ["distill.init_lr=1e6"], 1, "lower distill.lr (now 0.01) or distill.init_lr (now 1000000.0)"),
    ("unwritable output directory", unwritable_output, 1, "cannot create the output directory"),
    # text
    ("image model on text", ["dataset=agnews_offline"], 2, "model=lenet takes image data but dataset=agnews is text"),
    ("other architectures for a text set", ["dataset=agnews_offline", "model=bert", "eval.models=[mlp]"], 2,
     "a text set is a sequence of input embeddings of model=bert, which no other network reads: leave eval.models empty"),
    ("attention labels on images", ["labels.attention=cls"], 2, "labels.attention=cls needs a text classification dataset"),
    ("logit matching on a classifier", ["method=logit_match"], 2, "method=logit_match matches next-token distributions"),
    ("teacher labels for a language model", ["dataset=english_quotes_offline", "model=gpt_neo", "labels=teacher",
                                             "labels.teacher=t.safetensors"], 2, "labels=teacher distils a classifier"),
    ("text hub without network", ["dataset=agnews", "model=distilbert"], 2,
     "cannot load the tokenizer 'distilbert-base-uncased' (OSError; offline?): set model.tokenizer"),
    ("malformed CSV", minilm_on(b'"3","a title\n1,"unterminated, quote\nnot,a,row,at,all\n'), 2,
     "as csv (ParserError: Error tokenizing data"),
    ("labels that are not classes", minilm_on(b"World,title,text\n"), 2, "holds 'World', not an integer class: check the file"),
    ("sequences beyond the model's positions", ["dataset=agnews_offline", "model=bert", "dataset.max_length=600",
                                                 lambda t: f"model.name_or_path={minilm_stand_in()}"], 2,
     "dataset.max_length=600 is out of range for model=bert: it must be in [1, 512] (the model's max_position_embeddings)"),
]
if not torch.cuda.is_available():
    CASES.append(("cuda absent", ["device=cuda"], 2, "device=cuda but no CUDA device is visible"))


@pytest.mark.parametrize("name, overrides, code, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, overrides, code, expected, tmp_path):
    extra = overrides(tmp_path) if callable(overrides) else [o(tmp_path) if callable(o) else o for o in overrides]
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",  # the hub is unreachable
           "WANDB_API_KEY": "", "NETRC": str(tmp_path / "no-netrc")}  # and no W&B credentials
    proc = dd_run([*OFFLINE, *extra], tmp_path, env=env)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dd-run: error:")]
    assert proc.returncode == code, proc.stderr[-2000:]
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    if name.startswith("offline dataset"):  # an offline dataset creates nothing where its files are missing
        assert not (tmp_path / "no-mnist-here").exists() and not (tmp_path / "not").exists()
    logs = list(tmp_path.rglob("dd-run.log"))
    if code == 1 and logs:  # runtime failures keep their traceback in the run's log file
        assert "Traceback" in logs[0].read_text()


def test_a_checkpoint_from_another_config_is_refused(tmp_path):
    first = dd_run([*OFFLINE, f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "run" / "distilled.safetensors").read_bytes()
    again = dd_run([*OFFLINE, "distill.lr=0.02", f"output_dir={tmp_path / 'run'}"], tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith(
        f"dd-run: error: {tmp_path / 'run'} holds a run of another config (distill.lr: 0.01 -> 0.02)")
    assert (tmp_path / "run" / "distilled.safetensors").read_bytes() == before  # nothing lost


@pytest.mark.parametrize("key", ["output_dir", "hydra.run.dir"])
def test_a_folder_of_other_files_is_refused_and_left_as_it_was(tmp_path, key):
    """A user's folder (their own config.yaml, notes): dd-run would overwrite config.yaml there. It refuses
    before writing anything, Hydra's record and log included."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("lr: 0.1  # my own settings\n")
    (folder / "notes.txt").write_text("notes")
    proc = dd_run([*OFFLINE, f"{key}={folder}"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"dd-run: error: {key}={folder} holds files dd-run did not write (config.yaml, notes.txt): it would overwrite "
        "them; choose a new or empty directory"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "notes.txt"]
    assert (folder / "config.yaml").read_text() == "lr: 0.1  # my own settings\n"


def test_a_full_disk_is_one_line(monkeypatch, tmp_path):
    from dd_runner.core import files

    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_atomic_write", full)
    with pytest.raises(RunError, match="No space left on device; free some space or choose another output_dir"):
        files.write_json(tmp_path / "metrics.json", {"a": 1})


def test_out_of_memory_suggests_the_recompute_engine():
    message, code, expected = describe(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert code == 1 and expected and "distill.engine=recompute" in message and "\n" not in message
    message, _, expected = describe(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"))
    assert expected and "distill.engine=recompute" in message


def test_a_relative_data_path_is_shown_as_resolved(tmp_path, monkeypatch):
    """The offline datasets default to ../shared/data, relative to the working directory: an error names
    the folder it really looked in and the variable that moves it."""
    monkeypatch.chdir(tmp_path)
    shown = local_path("../shared/data/mnist")
    assert str(tmp_path.parent.resolve() / "shared" / "data" / "mnist") in shown
    assert "DD_RUNNER_SHARED_DATA" in shown
    assert local_path(tmp_path) == str(tmp_path)


def _numeric_keys():
    """Every int / float (or list of them) setting of the schema, as 'group.key'."""
    import dataclasses
    import typing

    from dd_runner.config import schema

    groups = {f.name: f.type for f in dataclasses.fields(schema.Config)}
    hints = typing.get_type_hints(schema.Config)
    classes = [("", schema.Config)] + [(f"{name}.", hints[name]) for name in groups if dataclasses.is_dataclass(hints[name])]
    classes += [(f"{name}.", cls) for name, cls in schema.GROUP_SCHEMAS.items()]
    classes += [("method.", cls) for cls in schema.METHOD_SCHEMAS.values()]
    keys = set()
    for prefix, cls in classes:
        for f, t in typing.get_type_hints(cls).items():
            text = str(t)
            if not dataclasses.is_dataclass(t) and ("int" in text or "float" in text) and "Dict" not in text:
                keys.add(prefix + f)
    return sorted(keys)


def test_every_numeric_setting_has_a_range():
    """A numeric key added to the schema must say which values the code can use (no silent nan / inf)."""
    from dd_runner.config.validate_numbers import METHOD_RANGES, RANGES

    keys = _numeric_keys()
    assert "distill.lr" in keys and "method.lr_net" in keys and "seed" in keys
    assert [k for k in keys if k not in RANGES and k not in METHOD_RANGES] == []


@pytest.mark.parametrize("key, extra", [
    ("distill.momentum", []), ("train.lr", []), ("experts.lr", []), ("augment.rotate", ["augment=dsa"]),
    ("labels.init_scale", []), ("labels.attention_weight", []), ("dataset.mean", []),
    ("method.lr_net", ["method=gradient_matching"]), ("augment.contrast", ["augment=dsa"]),
])
def test_nan_and_inf_are_refused_everywhere(key, extra):
    """Beyond the dd-run cases above: nan and inf in any float setting (ints cannot hold them) are one
    ConfigError naming it."""
    from omegaconf import ListConfig, OmegaConf, open_dict

    from dd_runner.config.validate import validate
    from dd_runner.core.errors import ConfigError

    from conftest import compose_cfg

    for bad in (float("nan"), float("inf")):
        cfg = compose_cfg(["dataset=mnist_offline", *extra])
        with open_dict(cfg):
            current = OmegaConf.select(cfg, key)
            OmegaConf.update(cfg, key, [bad] if isinstance(current, ListConfig) else bad, force_add=True)
        with pytest.raises(ConfigError, match=f"^{key}="):
            validate(cfg)


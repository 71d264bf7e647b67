"""dd-export: a finished run's set as a Hugging Face `datasets` folder that `load_dataset` reads back, with
a dataset card; bad input is one line, exit 2, and leaves nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from dd_runner import load_distilled
from dd_runner.run import run

from conftest import MNIST_OFFLINE, TINY, compose_cfg, shared_data


def dd_export(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dd_runner.runtime.export", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    shared_data("mnist")
    out = tmp_path_factory.mktemp("run")
    run(compose_cfg(MNIST_OFFLINE + TINY + ["init=fixed", "distill.steps=2", "distill.epochs=2", "eval.every=1",
                                            f"output_dir={out}"]))
    return out


def test_export_round_trips_through_datasets(finished_run, tmp_path):
    import datasets

    done = dd_export(finished_run, "--to", tmp_path / "export")
    assert done.returncode == 0, done.stderr
    ds = datasets.load_dataset(str(tmp_path / "export"), split="train", cache_dir=str(tmp_path / "cache"))
    d = load_distilled(finished_run / "distilled.safetensors")
    assert len(ds) == 20 and ds.features["label"].names == [str(c) for c in range(10)]
    assert ds["step"] == [0] * 10 + [1] * 10 and ds["label"] == list(range(10)) * 2
    for row, (s, j) in zip(ds, [(s, j) for s in range(2) for j in range(10)]):
        assert row["lrs"] == pytest.approx(d.lrs.view(2, 2)[:, s].tolist())
        assert row["label_distribution"] == pytest.approx(d.targets[s, j].tolist())
        pixels = torch.tensor(list(row["image"].getdata()), dtype=torch.float32).view(28, 28) / 255
        undone = (d.data[s, j, 0] * 0.3081 + 0.1307).clamp(0, 1)  # the normalisation undone
        assert (pixels - undone).abs().max() <= 0.5 / 255 + 1e-6
    header = yaml.safe_load((tmp_path / "export" / "README.md").read_text().split("---")[1])
    meta = header["dd_runner"]
    assert meta["source_dataset"] == "mnist" and meta["model"] == "lenet" and meta["init"] == "fixed"
    assert meta["budget"] == {"steps": 2, "epochs": 2, "ipc": 1, "examples": 20}
    assert meta["metrics"]["test/acc_mean"] == json.loads((finished_run / "metrics.json").read_text())["test/acc_mean"]
    # the folder carries the set itself: load_distilled from it reproduces the figure
    copy = load_distilled(tmp_path / "export" / "distilled.safetensors")
    acc = copy.evaluate(copy.train(copy.model()), copy.test_data())["acc"]
    assert acc == pytest.approx(meta["metrics"]["test/acc_mean"], abs=1e-3)


def test_bad_input_is_one_line_and_writes_nothing(finished_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "distilled.safetensors").write_bytes((finished_run / "distilled.safetensors").read_bytes())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    cases = [(unfinished, tmp_path / "a", "is unfinished (no metrics.json)"),
             (foreign, tmp_path / "b", "holds no distilled.safetensors"),
             (tmp_path / "nowhere", tmp_path / "c", "is not a directory"),
             (finished_run, full, "exists and is not empty")]
    for run_dir, to, message in cases:
        done = dd_export(run_dir, "--to", to)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not any((tmp_path / n).exists() for n in "abc") and os.listdir(full) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_push_without_token_or_network_is_one_line(finished_run, tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": ""}
    done = dd_export(finished_run, "--to", tmp_path / "x", "--push-to-hub", "someone/distilled", env=env)
    assert done.returncode == 2 and "needs a Hugging Face token" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "x" / "data").is_dir()  # the local export is complete; only the push is missing
    env["HF_TOKEN"] = "hf_not_a_real_token"  # the Hub is unreachable from the tests
    done = dd_export(finished_run, "--to", tmp_path / "y", "--push-to-hub", "someone/distilled", env=env)
    assert done.returncode == 2 and "cannot push to the Hugging Face Hub" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_text_export_has_embeddings_and_nearest_tokens(tokenizers, tmp_path):
    import datasets
    from text_helpers import AGNEWS_TINY, TEXT_TINY, tiny_model

    run(compose_cfg(AGNEWS_TINY + TEXT_TINY + tiny_model("distilbert", tokenizers["wordpiece"]) + [
        "init=fixed", "eval.baselines=[]", f"output_dir={tmp_path / 'run'}"]))
    done = dd_export(tmp_path / "run", "--to", tmp_path / "export")
    assert done.returncode == 0, done.stderr
    ds = datasets.load_dataset(str(tmp_path / "export"), split="train", cache_dir=str(tmp_path / "cache"))
    d = load_distilled(tmp_path / "run" / "distilled.safetensors")
    assert len(ds) == 8 and torch.tensor(ds[5]["inputs_embeds"]).equal(d.data[1, 1])  # steps x 4 classes, in order
    assert all(len(tokens.split()) == 12 for tokens in ds["nearest_tokens"])
    assert ds.features["label"].names == ["World", "Sports", "Business", "Sci/Tech"]
    assert "text-classification" in (tmp_path / "export" / "README.md").read_text()


def test_dc_format_holds_what_dcs_evaluator_reads(finished_run, tmp_path):
    """--format dc: one torch.save file of plain tensors and dicts with the fields of DC's evaluate_synset
    (image_syn, label_syn, args.lr_net / epoch_eval_train / batch_train / dsa*), flattened over steps."""
    done = dd_export(finished_run, "--format", "dc", "--to", tmp_path / "set.pt")
    assert done.returncode == 0, done.stderr
    payload = torch.load(tmp_path / "set.pt", weights_only=True)  # no pickled objects: plain data only
    d = load_distilled(finished_run / "distilled.safetensors")
    assert payload["image_syn"].dtype == torch.float32 and payload["image_syn"].shape == (20, 1, 28, 28)
    assert torch.equal(payload["image_syn"], d.data.flatten(0, 1)) and torch.equal(payload["data"][0][0], payload["image_syn"])
    assert payload["label_syn"].dtype == torch.int64 and payload["label_syn"].tolist() == list(range(10)) * 2
    assert torch.equal(payload["label_soft"], d.targets.flatten(0, 1))
    args = payload["args"]
    assert args["dsa"] is False and args["dsa_strategy"] == "none" and args["dc_aug_param"] is None
    assert args["batch_train"] == 256 and args["epoch_eval_train"] == d.protocol["train_epochs"] and args["model"] == "LeNet"
    assert set(args["dsa_param"]) == {"aug_mode", "prob_flip", "ratio_scale", "ratio_rotate", "ratio_crop_pad",
                                      "ratio_cutout", "brightness", "saturation", "contrast"}
    assert (payload["channel"], payload["im_size"], payload["num_classes"]) == (1, [28, 28], 10)
    assert payload["mean"] == [0.1307] and payload["std"] == [0.3081] and payload["class_names"][3] == "3"
    # learned lrs under eval.schedule=distilled: DC cannot use them, and the file says so
    assert args["lr_net"] == 0.01 and any("learned per-step lrs" in note for note in payload["notes"])
    for extra, message in [((), "exists: choose a new file"),
                           (("--push-to-hub", "someone/set"), "--push-to-hub uploads a datasets folder")]:
        done = dd_export(finished_run, "--format", "dc", "--to", tmp_path / ("set.pt" if not extra else "other.pt"), *extra)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr

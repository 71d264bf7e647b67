"""Data: the Hugging Face split syntax on MNIST idx files, and a clear line for every bad input."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from dd_runner.data import load_data
from dd_runner.data.idx_images import read_idx
from dd_runner.data.splits import resolve_split
from dd_runner.core.errors import ConfigError, DataError

from conftest import compose_cfg, shared_data


def test_split_syntax_means_what_datasets_means():
    sizes = {"train": 60000, "test": 10000}
    assert resolve_split("test[:8000]", sizes, "s")["test"].tolist() == list(range(8000))
    assert resolve_split("test[8000:]", sizes, "s")["test"][[0, -1]].tolist() == [8000, 9999]
    parts = resolve_split("train[:10%]+test[-5:]", sizes, "s")
    assert len(parts["train"]) == 6000 and parts["test"].tolist() == [9995, 9996, 9997, 9998, 9999]


@pytest.mark.parametrize("spec, needle", [("test[8000:100]", "selects no rows"), ("tset[:5]", "not a valid split"),
                                          ("test[::2]", "not a valid split")])
def test_bad_split_specs_name_the_setting(spec, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        resolve_split(spec, {"test": 10000}, "dataset.train_split")
    assert "dataset.train_split" in str(e.value)


def test_offline_mnist_split_loads_real_images(mnist_overrides):
    cfg = compose_cfg(mnist_overrides)
    data = load_data(cfg.dataset)
    assert (len(data.train), len(data.val), len(data.test)) == (7200, 800, 2000)
    assert data.train.inputs.shape[1:] == (1, 28, 28) and data.example_shape == (1, 28, 28)
    assert data.num_classes == 10 and set(data.test.labels.unique().tolist()) == set(range(10))
    # normalised with MNIST's mean / std: roughly zero mean, unit spread
    assert abs(data.train.inputs.mean().item()) < 0.1 and 0.8 < data.train.inputs.std().item() < 1.2
    # rows are exactly the file's rows: the first test image is a 7
    assert data.train.labels[0].item() == 7


def test_overlapping_splits_are_refused(mnist_overrides):
    cfg = compose_cfg(mnist_overrides + ["dataset.test_split=\"test[7000:]\""])
    with pytest.raises(ConfigError, match="share 200 rows"):
        load_data(cfg.dataset)


def test_split_seed_permutes_before_slicing(mnist_overrides):
    a = load_data(compose_cfg(mnist_overrides).dataset)
    b = load_data(compose_cfg(mnist_overrides + ["dataset.split_seed=1"]).dataset)
    assert len(a.train) == len(b.train)
    assert not torch.equal(a.train.labels, b.train.labels)


def test_truncated_idx_file_is_named(tmp_path):
    src = shared_data("mnist", "t10k-images-idx3-ubyte.gz")
    raw = gzip.open(src).read()
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(raw[:5000])
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad)
    garbage = tmp_path / "x.gz"
    garbage.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(garbage)


def test_missing_files_without_network_name_the_setting(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")  # what torchvision raises offline

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    cfg = compose_cfg([f"dataset.root={tmp_path}"])
    with pytest.raises(DataError) as e:
        load_data(cfg.dataset)
    message = str(e.value)
    assert "dataset.root" in message and "download failed" in message and "\n" not in message


def test_torchvision_layout_is_found(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_data("mnist", name), raw / name)
    cfg = compose_cfg([f"dataset.root={tmp_path}", "dataset.train_split=\"test[:100]\"",
                       "dataset.val_split=\"test[100:200]\"", "dataset.test_split=\"test[200:300]\""])
    assert len(load_data(cfg.dataset).test) == 100


# --- bad idx files: one line, exit 2, naming the file (issue #28) ---------------------------------------------
def _idx_copy(tmp_path, images=None, labels=None):
    """The offline MNIST test files, plain, under tmp_path; `images` / `labels` replace their bytes."""
    for name, raw in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        (tmp_path / name).write_bytes(raw if raw is not None else gzip.open(shared_data("mnist", f"{name}.gz")).read())
    return compose_cfg([f"dataset.root={tmp_path}", "dataset.download=false", "dataset.train_split=\"test[:100]\"",
                        "dataset.val_split=\"test[100:200]\"", "dataset.test_split=\"test[200:300]\""])


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and excinfo.value.exit_code == 2
    return message


def test_malformed_idx_header_is_named(tmp_path):
    header = b"\x00\x00\x08\x07" + b"\x00" * 8  # 7 dimensions declared, 2 given
    with pytest.raises(DataError) as e:
        load_data(_idx_copy(tmp_path, images=header).dataset)
    assert "malformed idx header" in _one_line(e) and "t10k-images-idx3-ubyte" in str(e.value)


def test_swapped_images_and_labels_files_are_named(tmp_path):
    images = gzip.open(shared_data("mnist", "t10k-images-idx3-ubyte.gz")).read()
    labels = gzip.open(shared_data("mnist", "t10k-labels-idx1-ubyte.gz")).read()
    with pytest.raises(DataError) as e:
        load_data(_idx_copy(tmp_path, images=labels, labels=images).dataset)
    assert "swapped" in _one_line(e) and "t10k-labels-idx1-ubyte" in str(e.value)


def test_idx_labels_beyond_num_classes_are_refused_before_distilling(tmp_path):
    labels = bytearray(gzip.open(shared_data("mnist", "t10k-labels-idx1-ubyte.gz")).read())
    labels[8 + 150] = 12  # one label of the validation rows (header: 8 bytes) beyond the 10 classes
    with pytest.raises(DataError) as e:
        load_data(_idx_copy(tmp_path, labels=bytes(labels)).dataset)
    message = _one_line(e)
    assert "t10k-labels-idx1-ubyte" in message and "label 12" in message and "dataset.num_classes=13" in message


def test_num_classes_below_the_labels_is_refused(tmp_path):
    cfg = _idx_copy(tmp_path)
    cfg.dataset.num_classes, cfg.dataset.class_names = 5, []
    with pytest.raises(DataError) as e:
        load_data(cfg.dataset)
    assert "dataset.num_classes=5" in _one_line(e) and "label 9" in str(e.value)

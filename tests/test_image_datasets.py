"""Image datasets beyond idx files: an image folder, parquet files written by `datasets`, torchvision classes;
each distils end to end and the set reproduces its figure through load_distilled; ZCA whitening travels in
the file; every bad input is one line, exit 2, naming the file or the column."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dd_runner import load_distilled
from dd_runner.core.errors import ConfigError, DataError
from dd_runner.data import load_data, zca
from dd_runner.run import run

from conftest import TINY, compose_cfg, shared_data
from image_helpers import CLASSES, drawn, idx_folder, image_folder, parquet_files, read_mnist_test

SMALL = ["model=convnet", "model.width=8", "model.depth=2", "init=fixed", "distill.steps=1", "distill.epochs=2",
         "device=cpu"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return image_folder(tmp_path_factory.mktemp("images") / "shapes")


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    return parquet_files(tmp_path_factory.mktemp("parquet"))


def folder_cfg(root, *extra):
    return compose_cfg(["dataset=image_folder", f"dataset.root={root}", *extra])


def parquet_cfg(files, *extra):
    return compose_cfg(["dataset=image_folder", "dataset.root=null", "dataset.name=shapes",
                        f"dataset.data_files={{train: '{files['train']}', test: '{files['test']}'}}",
                        "dataset.image_column=picture", "dataset.label_column=kind", "dataset.split_seed=null",
                        "dataset.train_split=\"train[:80%]\"", "dataset.val_split=\"train[80%:]\"",
                        "dataset.test_split=test", *extra])


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and excinfo.value.exit_code == 2
    return message


# --- reading ---------------------------------------------------------------------------------------------------
def test_image_folder_infers_classes_shape_and_normalisation(folder):
    data = load_data(folder_cfg(folder).dataset)
    assert data.class_names == list(CLASSES) and data.num_classes == 3 and data.example_shape == (3, 16, 16)
    assert (len(data.train), len(data.val), len(data.test)) == (48, 6, 6)
    # mean / std measured on the training split: the training inputs come out centred with unit spread
    x = data.train.inputs
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-5 and (x.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    assert len(data.normalisation["mean"]) == 3 and not data.whitening
    # every split holds every image once: 60 in all, no overlap between the roles
    rows = torch.cat([data.train.inputs, data.val.inputs, data.test.inputs]).flatten(1)
    assert torch.unique(rows, dim=0).shape[0] == 60


def test_parquet_classlabel_and_a_resize_to_grey(parquet):
    data = load_data(parquet_cfg(parquet).dataset)
    assert data.class_names == list(CLASSES) and (len(data.train), len(data.val), len(data.test)) == (38, 10, 18)
    assert data.test.labels.tolist() == [i % 3 for i in range(18)]
    grey = load_data(parquet_cfg(parquet, "dataset.image_shape=[1,8,8]", "dataset.mean=[0.5]", "dataset.std=[0.25]").dataset)
    assert grey.example_shape == (1, 8, 8)
    expected = np.asarray(drawn(0, 500).convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255
    assert torch.allclose(grey.test.inputs[0, 0] * 0.25 + 0.5, torch.from_numpy(expected), atol=1e-6)


def test_string_labels_map_through_sorted_names(tmp_path):
    from datasets import Dataset, Features, Image as ImageFeature, Value

    names = ["stripe", "circle", "square"]
    ds = Dataset.from_dict({"image": [drawn(i % 3, i) for i in range(12)], "label": [names[i % 3] for i in range(12)]},
                           features=Features({"image": ImageFeature(), "label": Value("string")}))
    ds.save_to_disk(str(tmp_path / "saved"))
    data = load_data(compose_cfg(["dataset=image_folder", f"dataset.root={tmp_path / 'saved'}", "dataset.split_seed=null"]).dataset)
    assert data.class_names == ["circle", "square", "stripe"]
    assert data.train.labels[:3].tolist() == [2, 0, 1]  # stripe, circle, square


def test_torchvision_classes_read_their_own_files(tmp_path):
    images, labels = read_mnist_test(shared_data("mnist"))
    raw = tmp_path / "FashionMNIST" / "raw"  # torchvision's layout, as its download leaves it
    idx_folder(raw, images[:300], labels[:300], "train")
    idx_folder(raw, images[300:400], labels[300:400], "t10k")
    cfg = compose_cfg(["dataset=fashion_mnist", f"dataset.root={tmp_path}", "dataset.download=false",
                       "dataset.mean=[]", "dataset.std=[]"])
    data = load_data(cfg.dataset)
    assert (len(data.train), len(data.val), len(data.test)) == (270, 30, 100)
    assert data.class_names[0] == "T-shirt/top" and data.example_shape == (1, 28, 28)
    assert data.test.labels.tolist() == labels[300:400].tolist()
    pixels = data.train.inputs[0, 0] * data.normalisation["std"][0] + data.normalisation["mean"][0]
    assert torch.allclose(pixels, torch.from_numpy(images[0] / 255.0).float(), atol=1e-5)


# --- distilled end to end, reused through the public API ------------------------------------------------------
@pytest.mark.parametrize("source", ["folder", "parquet"])
def test_distils_and_reproduces_its_figure(source, folder, parquet, tmp_path):
    extra = [*TINY, *SMALL, f"output_dir={tmp_path}"]
    cfg = folder_cfg(folder, *extra) if source == "folder" else parquet_cfg(parquet, *extra)
    metrics = run(cfg)
    d = load_distilled(tmp_path / "distilled.safetensors")
    assert json.loads(d.metadata["class_names"]) == list(CLASSES)
    assert d.normalisation == load_data(cfg.dataset).normalisation  # the measured mean / std, recorded
    net = d.model()
    d.train(net)
    assert d.evaluate(net, d.test_data())["acc"] == metrics["test/acc_mean"]  # fixed init: exactly


# --- ZCA whitening ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def whitened_run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("zca_run")
    cfg = folder_cfg(folder, "dataset.zca=true", *TINY, *SMALL, f"output_dir={out}")
    return cfg, run(cfg), out


def test_zca_whitens_with_the_training_fit(folder):
    data = load_data(folder_cfg(folder, "dataset.zca=true", "dataset.zca_eps=0.1").dataset)
    fitted = data.whitening
    u, s = fitted["eigenvectors"].double(), fitted["eigenvalues"].double()
    # whitened training images have covariance U diag(S / (S + eps)) U^T: eigenvalues damped below 1
    x = data.train.inputs.flatten(1).double()
    cov = (x - x.mean(0)).T @ (x - x.mean(0)) / (len(x) - 1)
    torch.testing.assert_close(cov, u @ torch.diag(s / (s + 0.1)) @ u.T, atol=2e-5, rtol=0)
    assert data.normalisation["zca"] == {"eps": 0.1, "fitted_on": "dataset.train_split"}
    raw = load_data(folder_cfg(folder, "dataset.mean=[0,0,0]", "dataset.std=[1,1,1]").dataset)
    torch.testing.assert_close(zca.unwhiten(data.test.inputs, fitted), raw.test.inputs, atol=1e-4, rtol=0)


def test_zca_travels_in_the_file_and_normalises_new_images(whitened_run, folder):
    cfg, metrics, out = whitened_run
    d = load_distilled(out / "distilled.safetensors")
    assert d.normalisation["zca"]["eps"] == 0.1 and d.extras["zca/eigenvectors"].shape == (768, 768)
    raw = load_data(folder_cfg(folder, "dataset.mean=[0,0,0]", "dataset.std=[1,1,1]").dataset).test.inputs
    torch.testing.assert_close(d.normalise(raw), load_data(cfg.dataset).test.inputs, atol=1e-6, rtol=0)
    net = d.model()
    assert d.evaluate(d.train(net), d.test_data())["acc"] == metrics["test/acc_mean"]


def test_dd_export_undoes_the_whitening(whitened_run, tmp_path):
    import datasets

    from dd_runner.runtime.export import export

    _, _, out = whitened_run
    export(out, tmp_path / "export")
    d = load_distilled(out / "distilled.safetensors")
    ds = datasets.load_dataset(str(tmp_path / "export"), split="train", cache_dir=str(tmp_path / "cache"))
    fitted = zca.from_tensors(d.extras)
    for row, x in zip(ds, d.data.flatten(0, 1)):
        pixels = torch.from_numpy(np.asarray(row["image"], dtype=np.float32)).permute(2, 0, 1) / 255
        undone = zca.unwhiten(x[None], fitted)[0].clamp(0, 1)
        assert (pixels - undone).abs().max() <= 0.5 / 255 + 1e-5
    assert ds[0]["image"].size == (16, 16) and ds[0]["image"].mode == "RGB"


# --- bad input: one line, exit 2, naming the file or the column ----------------------------------------------
def _broken_folder(tmp_path, name: str, payload) -> tuple:
    root = image_folder(tmp_path / "broken", per_class=4)
    path = root / "square" / name
    payload(path)
    return root, path


@pytest.mark.parametrize("case", ["truncated", "unreadable", "16-bit", "mixed size"])
def test_a_bad_image_is_named(case, tmp_path):
    png = (tmp_path / "whole.png")
    drawn(1, 99).save(png)
    writers = {
        "truncated": lambda p: p.write_bytes(png.read_bytes()[:200]),
        "unreadable": lambda p: p.write_bytes(b"this is not a picture"),
        "16-bit": lambda p: Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16)).save(p),
        "mixed size": lambda p: drawn(1, 99, size=20).save(p),
    }
    root, path = _broken_folder(tmp_path, "bad.png", writers[case])
    with pytest.raises(DataError) as e:
        load_data(folder_cfg(root).dataset)
    message = one_line(e)
    assert str(path) in message
    assert {"truncated": "truncated", "unreadable": "cannot read", "16-bit": "16-bit",
            "mixed size": "dataset.image_shape=[3,16,16]"}[case] in message


def test_an_empty_class_folder_is_named(tmp_path):
    root = image_folder(tmp_path / "f", per_class=3)
    (root / "zebra").mkdir()
    with pytest.raises(DataError) as e:
        load_data(folder_cfg(root).dataset)
    assert f"{root / 'zebra'} holds no images" in one_line(e)
    split = tmp_path / "split"  # train/ and test/ folders: each one's classes are checked
    image_folder(split / "train", per_class=2), image_folder(split / "test", per_class=2)
    (split / "test" / "zebra").mkdir()
    with pytest.raises(DataError) as e:
        load_data(folder_cfg(split, "dataset.test_split=test").dataset)
    assert f"{split / 'test' / 'zebra'} holds no images" in one_line(e)


def test_an_unknown_column_is_named(parquet):
    with pytest.raises(DataError) as e:
        load_data(parquet_cfg(parquet, "dataset.label_column=lbl").dataset)
    assert "column 'lbl'" in one_line(e) and "'kind'" in str(e.value) and "dataset.label_column" in str(e.value)
    with pytest.raises(DataError) as e:
        load_data(parquet_cfg(parquet, "dataset.image_column=pic").dataset)
    assert "column 'pic'" in one_line(e) and "dataset.image_column" in str(e.value)


def test_a_label_outside_num_classes_is_named(tmp_path):
    files = parquet_files(tmp_path / "ints", class_label=False)
    with pytest.raises(DataError) as e:
        load_data(parquet_cfg(files, "dataset.num_classes=2").dataset)
    message = one_line(e)
    assert "column 'kind'" in message and "label 2" in message and "dataset.num_classes=3" in message


def test_a_hub_name_without_the_network_says_what_to_set(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'uoft-cs/cifar10' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    cfg = compose_cfg(["dataset=cifar10", "dataset.loader=hf_images", "dataset.hub_name=uoft-cs/cifar10"])
    with pytest.raises(DataError) as e:
        load_data(cfg.dataset)
    message = one_line(e)
    assert "uoft-cs/cifar10" in message and "dataset.root" in message and "dataset.data_files" in message


def test_torchvision_files_missing_offline_name_the_root(tmp_path):
    cfg = compose_cfg(["dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"])
    with pytest.raises(DataError) as e:
        load_data(cfg.dataset)
    assert f"dataset.root={tmp_path}" in one_line(e) and "CIFAR10" in str(e.value)
    with pytest.raises(ConfigError, match="not a torchvision.datasets class"):
        load_data(compose_cfg(["dataset=cifar10", "dataset.hub_name=CIFAR11"]).dataset)

"""Small real image datasets written on the fly: drawn shapes on noise, three classes, as PNG folders,
parquet files and torchvision-style idx folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "stripe")


def drawn(cls: int, i: int, size: int = 16) -> Image.Image:
    """A noisy RGB picture of class `cls` (a circle, a square or a stripe at a varying place)."""
    rng = np.random.default_rng(1000 * cls + i)
    pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    o = int(rng.integers(0, size // 4))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    if cls == 0:
        draw.ellipse([o, o, o + size // 2, o + size // 2], fill=colour)
    elif cls == 1:
        draw.rectangle([o, size // 3, o + size // 2, size // 3 + size // 2], fill=colour)
    else:
        draw.rectangle([0, o + size // 3, size - 1, o + size // 3 + 2], fill=colour)
    return img


def image_folder(root: Path, per_class: int = 20, size: int = 16) -> Path:
    """root/<class>/<i>.png for the three classes."""
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            drawn(c, i, size).save(root / name / f"{i}.png")
    return root


def parquet_files(root: Path, train: int = 16, test: int = 6, size: int = 16, class_label: bool = True) -> dict:
    """{split: path} of parquet files written by `datasets` (an Image column 'picture' and a label column
    'kind': a ClassLabel, or plain integers)."""
    from datasets import ClassLabel, Dataset, Features, Image as ImageFeature, Value

    root.mkdir(parents=True, exist_ok=True)
    features = Features({"picture": ImageFeature(), "kind": ClassLabel(names=list(CLASSES)) if class_label else Value("int64")})
    files = {}
    for split, n, offset in (("train", train, 0), ("test", test, 500)):
        pictures: List[Image.Image] = [drawn(i % 3, offset + i, size) for i in range(n * 3)]
        ds = Dataset.from_dict({"picture": pictures, "kind": [i % 3 for i in range(n * 3)]}, features=features)
        files[split] = root / f"{split}.parquet"
        ds.to_parquet(str(files[split]))
    return files


def idx_folder(root: Path, images: np.ndarray, labels: np.ndarray, stem: str) -> None:
    """<stem>-images-idx3-ubyte / <stem>-labels-idx1-ubyte (plain) in root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{stem}-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, *images.shape) + images.tobytes())
    (root / f"{stem}-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, len(labels)) + labels.tobytes())


def read_mnist_test(shared: Path):
    """The offline MNIST test set as (images (N, 28, 28) uint8, labels (N,) uint8)."""
    raw = gzip.open(shared / "t10k-images-idx3-ubyte.gz").read()
    labels = gzip.open(shared / "t10k-labels-idx1-ubyte.gz").read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28), np.frombuffer(labels, np.uint8, offset=8)

"""Image datasets in LeCun's idx format (MNIST, Fashion-MNIST, KMNIST): local files or a torchvision download.

Files are looked up in `dataset.root` itself, in `<root>/<hub_name>/raw` (torchvision's layout) and in
`<root>/raw`, plain or gzipped. Only the source splits that the split specs name are read, so the offline
MNIST test file alone serves `train='test[:7200]' val='test[7200:8000]' test='test[8000:]'`.
"""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from dd_runner.core.errors import DataError, local_path
from dd_runner.data.bundle import DataBundle, Split
from dd_runner.data.splits import ROLES, resolve_roles, source_names, split_permutations

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("~/.cache/dd_runner").expanduser()
FILE_STEMS = {"train": "train", "test": "t10k"}  # source split -> idx file prefix
IDX_DTYPE = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (plain or .gz); refuse truncated or foreign files with the path in the message."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e} (corrupt file? replace it or point dataset.root elsewhere)") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPE:
        raise DataError(f"{path} is not an idx file (bad magic number); point dataset.root at the original files")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or padded: {len(raw)} bytes, expected {expected}; "
                        "re-download it or point dataset.root elsewhere")
    return np.frombuffer(raw, dtype=IDX_DTYPE[raw[2]], offset=4 + 4 * ndim).reshape(dims)


def _find(root: Path, hub_name: str, name: str) -> Optional[Path]:
    for folder in (root, root / hub_name / "raw", root / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _download(root: Path, hub_name: str, source: str, cfg) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, hub_name, None)
    if cls is None:
        raise DataError(f"dataset.hub_name='{hub_name}' is not a torchvision dataset; set dataset.root to local idx files")
    log.info("downloading %s '%s' into %s", hub_name, source, root)
    try:
        cls(str(root), train=(source == "train"), download=True)
    except Exception as e:  # torchvision raises RuntimeError / URLError / OSError offline
        raise DataError(
            f"{hub_name} '{source}' files are not under dataset.root={local_path(root)} and the download failed "
            f"({type(e).__name__}); set dataset.root to a folder with {FILE_STEMS[source]}-images-idx3-ubyte[.gz], "
            f"""or carve every split from the files you have (e.g. 'dataset.train_split="test[:8000]"')""") from None


def load_source(root: Path, hub_name: str, source: str, cfg) -> Tuple[np.ndarray, np.ndarray]:
    if source not in FILE_STEMS:
        raise DataError(f"'{source}' is not a split of {cfg.name}: use train or test in the dataset.*_split settings")
    stem = FILE_STEMS[source]
    names = (f"{stem}-images-idx3-ubyte", f"{stem}-labels-idx1-ubyte")
    paths = [_find(root, hub_name, n) for n in names]
    if None in paths:
        if not cfg.download:  # an offline dataset: never create folders or reach for the network
            raise DataError(
                f"{hub_name} '{source}' files are not under dataset.root={local_path(root)} and dataset.download=false: "
                f"set $DD_RUNNER_SHARED_DATA or dataset.root to a folder with {stem}-images-idx3-ubyte[.gz]")
        _download(root, hub_name, source, cfg)
        paths = [_find(root, hub_name, n) for n in names]
        if None in paths:
            raise DataError(f"{names[paths.index(None)]} not found under dataset.root={local_path(root)}")
    images, labels = (read_idx(p) for p in paths)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has {labels.shape[0]} labels")
    return images, labels


def load_idx_images(cfg, model_cfg=None) -> DataBundle:
    root = Path(cfg.root).expanduser() if cfg.root else DEFAULT_ROOT / cfg.name
    specs = {role: getattr(cfg, f"{role}_split") for role in ROLES}
    sources = sorted(set().union(*(source_names(spec) for spec in specs.values())))
    arrays: Dict[str, Tuple[np.ndarray, np.ndarray]] = {
        s: load_source(root, cfg.hub_name or cfg.name.upper(), s, cfg) for s in sources}
    sizes = {s: len(a[1]) for s, a in arrays.items()}
    rows = resolve_roles(cfg, sizes, split_permutations(sizes, cfg.split_seed))

    mean = torch.tensor(cfg.mean or [0.0]).view(-1, 1, 1)
    std = torch.tensor(cfg.std or [1.0]).view(-1, 1, 1)

    def build(parts: Dict[str, torch.Tensor]) -> Split:
        xs, ys = [], []
        for source, idx in parts.items():
            images, labels = arrays[source]
            x = torch.from_numpy(images[idx.numpy()].astype(np.float32) / 255.0)
            xs.append(x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2))
            ys.append(torch.from_numpy(labels[idx.numpy()].astype(np.int64)))
        return Split(inputs=(torch.cat(xs) - mean) / std, labels=torch.cat(ys))

    splits = {role: build(rows[role]) for role in ROLES}
    shape = tuple(splits["train"].inputs.shape[1:])
    if cfg.image_shape and tuple(cfg.image_shape) != shape:
        raise DataError(f"images under {root} have shape {shape}, dataset.image_shape says {tuple(cfg.image_shape)}")
    num_classes = cfg.num_classes or int(max(int(s.labels.max()) for s in splits.values()) + 1)
    log.info("%s from %s: train %d, val %d, test %d", cfg.name, root,
             *(len(splits[r]) for r in ROLES))
    return DataBundle(
        name=cfg.name, task=cfg.task, modality="image", num_classes=num_classes,
        class_names=list(cfg.class_names) or [str(c) for c in range(num_classes)],
        example_shape=shape, normalisation={"mean": list(cfg.mean), "std": list(cfg.std)},
        source=str(root), **splits)

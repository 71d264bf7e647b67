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
from dd_runner.data.bundle import DataBundle
from dd_runner.data.images import RawImages, image_bundle
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
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} has a malformed idx header ({ndim} dimensions in {len(raw)} bytes): "
                        "re-download it or point dataset.root elsewhere")
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


def load_source(root: Path, hub_name: str, source: str, cfg) -> Tuple[np.ndarray, np.ndarray, str]:
    """(images, labels, the labels file's path) of one source split."""
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
    if images.ndim == 1 and labels.ndim in (3, 4):
        raise DataError(f"{paths[0]} holds labels and {paths[1]} holds images: the two files are swapped "
                        f"(images belong in {names[0]}[.gz], labels in {names[1]}[.gz])")
    if images.ndim not in (3, 4):
        raise DataError(f"{paths[0]} holds {images.ndim}-D data, not images (count x height x width): "
                        "point dataset.root at the original files")
    if labels.ndim != 1:
        raise DataError(f"{paths[1]} holds {labels.ndim}-D data, not labels (one per image): "
                        "point dataset.root at the original files")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has {labels.shape[0]} labels")
    return images, labels, str(paths[1])


def load_idx_images(cfg, model_cfg=None) -> DataBundle:
    root = Path(cfg.root).expanduser() if cfg.root else DEFAULT_ROOT / cfg.name
    specs = {role: getattr(cfg, f"{role}_split") for role in ROLES}
    sources = sorted(set().union(*(source_names(spec) for spec in specs.values())))
    arrays: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    label_files: Dict[str, str] = {}  # source split -> its labels file, named when a label is out of range
    for s in sources:
        *arrays_of_s, label_files[s] = load_source(root, cfg.hub_name or cfg.name.upper(), s, cfg)
        arrays[s] = tuple(arrays_of_s)
    sizes = {s: len(a[1]) for s, a in arrays.items()}
    rows = resolve_roles(cfg, sizes, split_permutations(sizes, cfg.split_seed))

    def build(role: str) -> RawImages:
        xs, ys = [], []
        for source, idx in rows[role].items():
            images, labels = arrays[source]
            x = torch.from_numpy(images[idx.numpy()])
            xs.append(x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2))
            ys.append(torch.from_numpy(labels[idx.numpy()].astype(np.int64)))
        return RawImages(torch.cat(xs), torch.cat(ys), origin=" / ".join(label_files[s] for s in rows[role]))

    return image_bundle(cfg, {role: build(role) for role in ROLES}, str(root))

"""`loader: hf_images`: any image-classification dataset Hugging Face `datasets` opens — a hub id
(`uoft-cs/cifar10`), local parquet / arrow files, a `save_to_disk` folder, or an image folder with one
sub-directory per class (image_sources.py says which setting selects which).

The image column is the dataset's one column of the `Image` type unless `dataset.image_column` names it;
labels come from `dataset.label_column`: a ClassLabel (its names become the class names), integers (minus
`dataset.label_offset`), or strings (mapped through `dataset.class_names`, else sorted). The train / val /
test roles are carved from the source splits with the split specs, exactly as for idx files and text, and
only the selected rows are decoded — once, into uint8 tensors (decode.py), then checked and normalised
(images.py).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch

from dd_runner.core.errors import DataError
from dd_runner.data.bundle import DataBundle
from dd_runner.data.decode import Target, configured_target, decode_all
from dd_runner.data.image_sources import open_sources
from dd_runner.data.images import RawImages, image_bundle
from dd_runner.data.splits import ROLES, resolve_roles, source_names, split_permutations

CHUNK = 2048  # rows read from arrow at a time while decoding


def image_column(cfg, ds, origin: str) -> str:
    import datasets

    if cfg.get("image_column"):
        if cfg.image_column not in ds.column_names:
            raise DataError(f"column '{cfg.image_column}' is not in {origin} (it has {ds.column_names}): set "
                            "dataset.image_column")
        return cfg.image_column
    typed = [c for c, f in ds.features.items() if isinstance(f, datasets.Image)]
    if len(typed) != 1:
        found = f"image columns {typed}" if typed else f"no column of the Image type (columns {ds.column_names})"
        raise DataError(f"{origin} has {found}: set dataset.image_column to the one holding the images")
    return typed[0]


def _integers(values, offset: int, where: str) -> List[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise DataError(f"{where} holds {str(v)[:40]!r}, not a class id: set dataset.label_column to the "
                            "column of class ids or class names")
        out.append(int(v) - offset)
    return out


def labels_of(cfg, sources: dict, origin: str) -> Tuple[Dict[str, torch.Tensor], List[str], Optional[int]]:
    """({source split: int64 labels}, class names the data carries, the number of classes it declares)."""
    import datasets

    column = cfg.label_column
    first = next(iter(sources.values()))
    if column not in first.column_names:
        hint = " (an image folder needs one sub-directory of images per class)" if "imagefolder" in str(
            first.info.builder_name) else ""
        raise DataError(f"column '{column}' is not in {origin} (it has {first.column_names}): set "
                        f"dataset.label_column{hint}")
    feature = first.features[column]
    where = f"column '{column}' of {origin}"
    raw = {s: ds[column] for s, ds in sources.items()}
    if isinstance(feature, datasets.ClassLabel):
        return {s: torch.tensor(v, dtype=torch.long) for s, v in raw.items()}, list(feature.names), feature.num_classes
    if all(isinstance(v, str) for values in raw.values() for v in values):
        names = list(cfg.class_names) or sorted({v for values in raw.values() for v in values})
        index = {name: i for i, name in enumerate(names)}
        for values in raw.values():
            unknown = next((v for v in values if v not in index), None)
            if unknown is not None:
                raise DataError(f"{where} holds the class '{unknown[:40]}', which dataset.class_names does not list")
        return {s: torch.tensor([index[v] for v in values], dtype=torch.long) for s, values in raw.items()}, names, len(names)
    offset = int(cfg.label_offset)
    return {s: torch.tensor(_integers(v, offset, where), dtype=torch.long) for s, v in raw.items()}, [], None


def _image_source(value, where: str):
    """What PIL opens for one cell: encoded bytes or a path (an Image feature read undecoded, or a plain
    bytes / path column)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray, str)) and value:
        return value
    raise DataError(f"{where} is {type(value).__name__}, not an image (encoded bytes or a file path): set "
                    "dataset.image_column to the column holding the images")


def _decode_rows(ds, column: str, rows: torch.Tensor, where: str, target: Optional[Target]):
    def items():
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK].tolist()
            for row, value in zip(chunk, ds.select(chunk)[column]):
                path = value.get("path") if isinstance(value, dict) else None
                name = path or f"in row {row} of {where}"
                yield _image_source(value, name), name

    return decode_all(items(), len(rows), target, where)


def load_hf_images(cfg, model_cfg=None) -> DataBundle:
    import datasets

    specs = {role: getattr(cfg, f"{role}_split") for role in ROLES}
    wanted = set().union(*(source_names(spec) for spec in specs.values()))
    sources, origin = open_sources(cfg, wanted)
    column = image_column(cfg, next(iter(sources.values())), origin)
    labels, names, known = labels_of(cfg, sources, origin)
    undecoded = {s: ds.cast_column(column, datasets.Image(decode=False))
                 if isinstance(ds.features[column], datasets.Image) else ds for s, ds in sources.items()}
    sizes = {s: len(ds) for s, ds in sources.items()}
    rows = resolve_roles(cfg, sizes, split_permutations(sizes, cfg.split_seed))

    target = configured_target(cfg.image_shape)
    parts = {}
    for role in ROLES:  # train first: without dataset.image_shape its first image sets the target
        images, ys = [], []
        for s, idx in rows[role].items():
            x, target = _decode_rows(undecoded[s], column, idx, f"split '{s}' of {origin}", target)
            images.append(x)
            ys.append(labels[s][idx])
        parts[role] = RawImages(torch.cat(images), torch.cat(ys), origin=f"column '{cfg.label_column}' of {origin}")
    return image_bundle(cfg, parts, origin, found_names=names, known_classes=known)

"""Where an `hf_images` dataset comes from, opened as {source split: datasets.Dataset}.

In order of precedence: `dataset.data_files` (parquet, arrow or image files, per split), `dataset.root` (a
`save_to_disk` folder, a folder of parquet / arrow files, or an image folder with one sub-directory per
class, read by datasets' `imagefolder` builder, which names the classes after the folders and takes
train/ and test/ sub-folders as splits), else `dataset.hub_name` (with `dataset.hub_config`) from the
Hugging Face hub. Offline, a hub name fails in one line naming the local settings to use instead.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Dict, List, Tuple

from dd_runner.core.errors import ConfigError, DataError, local_path
from dd_runner.data.hub import quiet_hub

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
BUILDERS = {".parquet": "parquet", ".arrow": "arrow", **{s: "imagefolder" for s in IMAGE_SUFFIXES}}


def _innermost(e: BaseException) -> BaseException:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    return e


def _reason(e: BaseException, innermost: bool = True) -> str:
    inner = _innermost(e) if innermost else e
    return f"{type(inner).__name__}: {(str(inner).strip().splitlines() or [''])[0][:160]}"


def data_files(cfg) -> Dict[str, List[str]]:
    """dataset.data_files as {source split: [paths]}; a bare path or a list is the 'train' split. Glob
    patterns must match at least one file."""
    from omegaconf import OmegaConf

    files = OmegaConf.to_container(cfg.data_files, resolve=True) if OmegaConf.is_config(cfg.data_files) else cfg.data_files
    if isinstance(files, (str, Path)):
        files = {"train": [files]}
    elif isinstance(files, list):
        files = {"train": files}
    out = {}
    for split, paths in files.items():
        out[split] = [str(Path(p).expanduser()) for p in (paths if isinstance(paths, list) else [paths])]
        for p in out[split]:
            if not (glob.glob(p, recursive=True) if glob.has_magic(p) else Path(p).is_file()):
                raise DataError(f"dataset.data_files names {local_path(p)}, which matches no file")
    return out


def _images_in(folder: Path) -> bool:
    return any(f.lower().endswith(IMAGE_SUFFIXES) for f in os.listdir(folder))


def check_class_folders(root: Path) -> None:
    """Refuse an image folder with an empty class folder: `imagefolder` would silently drop that class and
    shift the ids of every class after it. Class folders are the sub-folders of a folder where some
    sub-folder holds images (root/<class>/, or root/train/<class>/ and root/test/<class>/)."""
    for parent, dirs, _ in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        children = [Path(parent) / d for d in dirs]
        if any(_images_in(c) for c in children):
            for child in children:
                if not any(f.lower().endswith(IMAGE_SUFFIXES) for _, _, files in os.walk(child) for f in files):
                    raise DataError(f"the class folder {child} holds no images: add images or remove the folder "
                                    f"(dataset.root={root})")
            dirs[:] = []  # checked: what lies below a class folder is not another level of classes


def _builder_of(paths: List[str]) -> str:
    suffix = Path(paths[0].rstrip("*")).suffix.lower()
    if suffix not in BUILDERS:
        raise DataError(f"dataset.data_files: cannot read '{suffix or paths[0]}' files as images; use parquet, "
                        f"arrow or image files ({', '.join(IMAGE_SUFFIXES)})")
    return BUILDERS[suffix]


def _from_files(cfg, wanted: set):
    import datasets

    files = data_files(cfg)
    missing = wanted - set(files)
    if missing:
        raise ConfigError(f"the dataset.*_split settings read {sorted(missing)} but dataset.data_files only has "
                          f"{sorted(files)}: carve every split from those, e.g. dataset.train_split='{next(iter(files))}[:90%]'")
    builder = _builder_of(next(iter(files.values())))
    described = ", ".join(p for s in sorted(wanted) for p in files[s])
    try:
        with quiet_hub():
            loaded = datasets.load_dataset(builder, data_files={s: files[s] for s in wanted})
    except Exception as e:  # pyarrow / PIL errors wrapped by datasets: report the innermost
        raise DataError(f"cannot read {described} as {builder} ({_reason(e)}): check the files or point "
                        "dataset.data_files elsewhere") from None
    return {s: loaded[s] for s in wanted}, described


def _from_root(cfg):
    import datasets

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.root={local_path(cfg.root)} is not a folder: point it at an image folder, a "
                        "save_to_disk folder or a folder of parquet files")
    saved = (root / "dataset_dict.json").is_file() or (root / "state.json").is_file()
    if not saved:
        check_class_folders(root)
    try:
        with quiet_hub():
            if saved:
                loaded = datasets.load_from_disk(str(root))
                return (loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}), str(root)
            return datasets.load_dataset(str(root.resolve())), str(root)
    except Exception as e:  # no data files, unreadable parquet, ...: the innermost reason, one line
        raise DataError(f"cannot read dataset.root={local_path(cfg.root)} as a dataset ({_reason(e)}): point it "
                        "at an image folder, a save_to_disk folder or a folder of parquet files") from None


def _from_hub(cfg):
    import datasets

    if not cfg.hub_name:
        raise ConfigError(f"dataset={cfg.name} needs dataset.root (an image folder or a local copy), "
                          "dataset.data_files (parquet files) or dataset.hub_name (a Hugging Face dataset id)")
    config = cfg.get("hub_config")
    try:
        with quiet_hub(cfg.hub_name):
            return datasets.load_dataset(cfg.hub_name, config)
    except ValueError as e:  # e.g. "Config name is missing ... pick one among the available configs: [...]"
        raise ConfigError(f"'{cfg.hub_name}' cannot be opened with dataset.hub_config={config} ({_reason(e)})") from None
    except Exception as e:  # ConnectionError / OSError offline, DatasetNotFoundError, ...
        raise DataError(f"cannot open '{cfg.hub_name}' from the Hugging Face hub ({_reason(e, innermost=False)}); without the network "
                        "set dataset.root to a local copy (a folder of its parquet files, a save_to_disk folder or "
                        "an image folder) or dataset.data_files to its parquet files") from None


def open_sources(cfg, wanted: set) -> Tuple[dict, str]:
    """({source split: Dataset} for the splits the split specs read, a description of the origin)."""
    if cfg.data_files:
        return _from_files(cfg, wanted)
    if cfg.root:
        loaded, origin = _from_root(cfg)
    else:
        loaded, origin = _from_hub(cfg), f"hub:{cfg.hub_name}"
    missing = wanted - set(loaded)
    if missing:
        raise ConfigError(f"{origin} has no split {sorted(missing)} (it has {sorted(loaded)}): carve every split "
                          f"from those in the dataset.*_split settings, e.g. dataset.test_split='{sorted(loaded)[0]}[90%:]'")
    return {s: loaded[s] for s in wanted}, origin

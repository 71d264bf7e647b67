"""`loader: torchvision`: any `torchvision.datasets` class by name (`dataset.hub_name: CIFAR10`), its files
in `dataset.root` (downloaded there when missing and `dataset.download` is true).

The source splits the split specs name map onto the class's own arguments: `train` / `test` become
`train=True/False` (CIFAR10, CIFAR100, MNIST, FashionMNIST, KMNIST, EMNIST, USPS, ...), any other name is
passed as `split=` where the class takes one (SVHN: train, test, extra; STL10; Flowers102), and a class
with neither (ImageFolder) has the one source split 'train'. EMNIST's own `split` (balanced, letters, ...)
is `dataset.hub_config`. Images come from the class's `data` array where it keeps one (CIFAR, SVHN, the
MNIST family: no per-image decoding), else from its items (PIL images), then the shared checks and
normalisation (images.py).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from dd_runner.core.errors import ConfigError, DataError, local_path
from dd_runner.data.bundle import DataBundle
from dd_runner.data.decode import Target, configured_target, conform, decode_all
from dd_runner.data.images import RawImages, image_bundle
from dd_runner.data.splits import ROLES, resolve_roles, source_names, split_permutations

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("~/.cache/dd_runner").expanduser()
# EMNIST's files hold every image transposed (the NIST layout); torchvision returns them as stored
TRANSPOSED = ("EMNIST",)


def dataset_class(name: Optional[str]):
    import torchvision

    cls = getattr(torchvision.datasets, str(name), None)
    if not inspect.isclass(cls):
        raise ConfigError(f"dataset.hub_name={name} is not a torchvision.datasets class (e.g. CIFAR10, CIFAR100, "
                          "SVHN, FashionMNIST, KMNIST, EMNIST)")
    return cls


def _arguments(cls, source: str, cfg) -> dict:
    """The constructor arguments selecting `source` (see the module docstring)."""
    import torchvision

    params = inspect.signature(cls.__init__).parameters
    mnist_family = issubclass(cls, torchvision.datasets.MNIST)  # EMNIST's `train` hides in **kwargs
    kwargs = {}
    if "download" in params or mnist_family:
        kwargs["download"] = bool(cfg.download)
    variant = cfg.get("hub_config")
    if "train" in params or mnist_family:
        if source not in ("train", "test"):
            raise ConfigError(f"'{source}' is not a split of {cls.__name__}: use train or test in the dataset.*_split settings")
        kwargs["train"] = source == "train"
        if "split" in params:
            if not variant:
                raise ConfigError(f"{cls.__name__} needs dataset.hub_config: its split argument (e.g. balanced, letters)")
            kwargs["split"] = variant
    elif "split" in params:
        kwargs["split"] = source
    elif source != "train":
        raise ConfigError(f"{cls.__name__} has no train / test parts: carve every split from 'train', e.g. "
                          "dataset.test_split='train[90%:]'")
    return kwargs


def open_split(cls, root: Path, source: str, cfg):
    kwargs = _arguments(cls, source, cfg)
    log.info("%s '%s' from %s", cls.__name__, source, root)
    try:
        return cls(str(root), **kwargs)
    except ValueError as e:  # torchvision's verify_str_arg: an unknown split name
        raise ConfigError(f"{cls.__name__} refuses {kwargs} ({str(e).splitlines()[0][:160]}): fix the "
                          "dataset.*_split settings or dataset.hub_config") from None
    except Exception as e:  # RuntimeError "Dataset not found", URLError / OSError offline, a corrupt archive
        how = "dataset.download=false" if not cfg.download else f"the download failed ({type(e).__name__})"
        raise DataError(f"{cls.__name__} '{source}' is not under dataset.root={local_path(root)} and {how}: set "
                        f"dataset.root to the folder holding torchvision's {cls.__name__} files") from None


def _labels(ds) -> Optional[torch.Tensor]:
    for name in ("targets", "labels"):
        values = getattr(ds, name, None)
        if values is not None and len(values) == len(ds):
            return torch.as_tensor(np.asarray(values)).long()
    return None


def arrays_of(ds, name: str, origin: str, target: Optional[Target]) -> Tuple[torch.Tensor, torch.Tensor, Target]:
    """(uint8 images (N, C, H, W) brought to `target`, int64 labels, the target)."""
    data, labels = getattr(ds, "data", None), _labels(ds)
    if isinstance(data, (np.ndarray, torch.Tensor)) and labels is not None and data.dtype in (np.uint8, torch.uint8):
        x = torch.as_tensor(np.asarray(data))
        if x.dim() == 3:
            x = x.unsqueeze(1)
        elif x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)  # CIFAR keeps (N, H, W, C); SVHN, STL10 keep (N, C, H, W)
        if name in TRANSPOSED:
            x = x.transpose(2, 3)
        x, target = conform(x.contiguous(), target, origin)
        return x, labels, target
    # classes without arrays: their items, (PIL image, label) pairs
    items = ((ds[i][0], f"{i} of {origin}") for i in range(len(ds)))
    x, target = decode_all(items, len(ds), target, origin)
    ys = labels if labels is not None else torch.tensor([int(ds[i][1]) for i in range(len(ds))])
    return x, ys, target


def class_names(ds) -> List[str]:
    names = getattr(ds, "classes", None)
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def load_torchvision(cfg, model_cfg=None) -> DataBundle:
    cls = dataset_class(cfg.hub_name)
    root = Path(cfg.root).expanduser() if cfg.root else DEFAULT_ROOT / cfg.name
    specs = {role: getattr(cfg, f"{role}_split") for role in ROLES}
    wanted = sorted(set().union(*(source_names(spec) for spec in specs.values())),
                    key=lambda s: (s != "train", s))  # train first: it sets the image target
    target = configured_target(cfg.image_shape)
    loaded, names = {}, []
    for source in wanted:
        ds = open_split(cls, root, source, cfg)
        loaded[source] = arrays_of(ds, cls.__name__, f"{cls.__name__} '{source}' in {root}", target)
        target = loaded[source][2]
        names = names or class_names(ds)
    sizes = {s: len(v[1]) for s, v in loaded.items()}
    rows = resolve_roles(cfg, sizes, split_permutations(sizes, cfg.split_seed))
    parts = {role: RawImages(torch.cat([loaded[s][0][idx] for s, idx in rows[role].items()]),
                             torch.cat([loaded[s][1][idx] for s, idx in rows[role].items()]),
                             origin=" + ".join(f"the labels of {cls.__name__} '{s}'" for s in rows[role]))
             for role in ROLES}
    return image_bundle(cfg, parts, f"torchvision:{cls.__name__} in {root}", found_names=names)

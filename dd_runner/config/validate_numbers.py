"""Numeric settings: the range each one must lie in, and no nan or inf anywhere (called by `validate`).

Every numeric key of the schema is listed in RANGES with what the code can use; a sweep over every other
float of the config rejects nan and inf, so a key added later without a range still cannot carry them.
`check_against_data` runs once the data is loaded, before anything else: budgets the split cannot fill.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, Tuple

from omegaconf import OmegaConf

from dd_runner.core.errors import ConfigError

Bound = Tuple[str, Callable[[float], bool]]
POSITIVE: Bound = ("> 0", lambda v: v > 0)
NON_NEGATIVE: Bound = (">= 0", lambda v: v >= 0)
FRACTION: Bound = ("in [0, 1)", lambda v: 0 <= v < 1)
SEED: Bound = ("in [-2**63, 2**63)", lambda v: -2 ** 63 <= v < 2 ** 63)  # torch.manual_seed overflows beyond
ANY: Bound = ("a number", lambda v: True)  # any finite value has a meaning

_POSITIVE_KEYS = (
    "distill.steps", "distill.epochs", "distill.ipc", "distill.iterations", "distill.lr", "distill.init_lr",
    "distill.lr_lr", "distill.batch_size", "distill.sample_nets", "distill.clip_grad", "distill.decay_every",
    "distill.seq_len", "eval.nets", "eval.batch_size", "eval.val_nets", "eval.tune_nets", "eval.train_epochs",
    "eval.train_batch", "eval.lr_grid", "train.epochs", "train.lr", "train.batch_size", "logger.log_every",
    "dataset.max_length", "dataset.std", "dataset.num_classes", "dataset.image_shape", "model.width", "model.depth", "experts.count", "experts.epochs",
    "experts.lr", "experts.batch_size", "labels.temperature", "augment.brightness", "augment.saturation",
    "augment.contrast")
_NON_NEGATIVE_KEYS = (
    "distill.recompute_every", "distill.vmap_chunk", "distill.real_chunk", "eval.every", "eval.full_data_nets",
    "eval.train_weight_decay", "train.weight_decay", "labels.init_scale", "labels.attention_weight",
    "checkpoint.every", "dataset.min_length", "augment.rotate")
_FRACTION_KEYS = ("distill.momentum", "train.momentum", "experts.momentum", "eval.train_momentum",
                  "model.dropout", "augment.crop", "augment.cutout")
RANGES: Dict[str, Bound] = {
    **{k: POSITIVE for k in _POSITIVE_KEYS}, **{k: NON_NEGATIVE for k in _NON_NEGATIVE_KEYS},
    **{k: FRACTION for k in _FRACTION_KEYS},
    "seed": SEED, "dataset.split_seed": SEED, "dataset.mean": ANY, "dataset.label_offset": ANY,
    "distill.decay_factor": ("in (0, 1]", lambda v: 0 < v <= 1),
    "distill.average": ("in (0, 1) (the running average's decay; null: off)", lambda v: 0 < v < 1),
    "distill.betas": ("in [0, 1)", lambda v: 0 <= v < 1),
    "labels.alpha": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "augment.scale": (">= 1 (images are scaled by a factor in [1/scale, scale])", lambda v: v >= 1),
}
METHOD_RANGES: Dict[str, Bound] = {
    "method.batch_real": POSITIVE, "method.outer_loop": POSITIVE, "method.inner_loop": POSITIVE,
    "method.lr_net": POSITIVE, "method.expert_epochs": POSITIVE, "method.max_start_epoch": POSITIVE,
}
FREE_FORM = ("model.config_overrides", "model.architecture")  # handed to transformers as they are


def _shown(value) -> str:
    return str(list(value)) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else str(value)


def check_range(key: str, value, bound: Bound) -> None:
    """ConfigError unless value (a number, or each number of a list) is finite and within `bound`."""
    if value is None:
        return
    text, ok = bound
    values = list(value) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else [value]
    for v in values:
        finite = not isinstance(v, float) or math.isfinite(v)
        if not finite or not ok(v):
            must = f"finite and {text}" if not finite else text
            raise ConfigError(f"{key}={_shown(value)} is out of range: it must be {must}"
                              + (" (each entry)" if len(values) > 1 or OmegaConf.is_list(value) else ""))


def _leaves(node, prefix: str = "") -> Iterable[Tuple[str, object]]:
    """(dotted key, value) of every leaf of a plain container, free-form maps left out."""
    items = node.items() if isinstance(node, dict) else ((f"[{i}]", v) for i, v in enumerate(node))
    for key, value in items:
        path = f"{prefix}{key}" if str(key).startswith("[") or not prefix else f"{prefix}.{key}"
        if path in FREE_FORM:
            continue
        if isinstance(value, (dict, list)):
            yield from _leaves(value, path)
        else:
            yield path, value


def check_numbers(cfg) -> None:
    """Every listed key in its range; no nan or inf in any other float of the config."""
    for key, bound in RANGES.items():
        check_range(key, OmegaConf.select(cfg, key), bound)
    for key, bound in METHOD_RANGES.items():
        check_range(key, OmegaConf.select(cfg, key, default=None), bound)
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} is out of range: it must be a finite number")


def check_against_data(cfg, data) -> None:
    """Budgets the loaded training split cannot fill, as one line before anything runs: every real example
    initialises (init_from=real) or is (random_real, k-means, herding, k-center) one synthetic slot."""
    if data.task != "classification" or data.modality != "image" or data.train.labels is None:
        return  # text sets check their own budget against the split (synthetic/text.py)
    d = cfg.distill
    need = d.steps * d.ipc
    users = (["distill.init_from=real"] if d.init_from == "real" and cfg.mode == "distill" else []) + [
        f"eval.baselines entry {name}" for name in cfg.eval.baselines
        if name in ("random_real", "kmeans", "herding", "kcenter")]
    if not users:
        return
    counts = [int((data.train.labels == c).sum()) for c in range(data.num_classes)]
    smallest = min(range(len(counts)), key=counts.__getitem__)
    if counts[smallest] < need:
        most = counts[smallest] // d.steps
        raise ConfigError(
            f"distill.ipc={d.ipc} is out of range for {users[0]}: it must be in [1, {most}] with distill.steps="
            f"{d.steps} (each synthetic example takes a distinct real one; class {smallest} has "
            f"{counts[smallest]} in dataset.train_split='{cfg.dataset.train_split}')")

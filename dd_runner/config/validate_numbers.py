"""Numeric settings: the range each one must lie in, and no nan or inf anywhere (called by `validate`).

Every numeric option of the schema declares its range (`bound=` in dd_runner/config/schema*.py: what the
code can use); a sweep over every other number of the config rejects nan, inf and integers beyond 64 bits,
so a key without a range still cannot carry them.
`check_against_data` runs once the data is loaded, before anything else: budgets the split cannot fill.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Tuple

from omegaconf import OmegaConf

from dd_runner.config.fields import Bound
from dd_runner.core.errors import ConfigError


def _bounds(method_keys: bool) -> Dict[str, Bound]:
    """key -> range of every numeric option, read from the schema (`option(..., bound=...)`)."""
    from dd_runner.config.schema import all_settings

    return {s.key: s.bound for s in all_settings() if s.bound is not None
            and s.key.startswith("method.") == method_keys}


RANGES: Dict[str, Bound] = _bounds(method_keys=False)
METHOD_RANGES: Dict[str, Bound] = _bounds(method_keys=True)  # only where the chosen method has the key
FREE_FORM = ("model.config_overrides", "model.architecture")  # handed to transformers as they are


def _shown(value) -> str:
    return str(list(value)) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else str(value)


def check_range(key: str, value, bound: Bound) -> None:
    """ConfigError unless value (a number, or each number of a list) is finite and within `bound`."""
    if value is None:
        return
    text, ok = bound.text, bound.ok
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
        if isinstance(value, int) and not isinstance(value, bool) and not -2 ** 63 <= value < 2 ** 63:
            # torch sizes, seeds and counters are 64-bit: beyond, they overflow deep inside a run
            raise ConfigError(f"{key}={value} is out of range: it must fit in 64 bits (|value| < 2**63)")


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

"""The header of a `distilled.safetensors` (or a snapshot), checked when it is loaded: an altered or damaged
file fails in `load_distilled` with one line naming the file and the field, never later inside `model()` or
`train()` with a raw KeyError or shape mismatch.

Format tags: dd-runner/1 (the set alone), dd-runner/2 (self-contained: theta_0, config, protocol,
provenance), dd-runner/3 (the protocol holds the whole evaluation: augmentation, lr grid, labels and every
eval.models architecture's lr). Files of versions 1-3 are read; a newer one is refused in one line.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Dict, Optional

import torch

from dd_runner.core.errors import DataError

FORMAT_VERSION = 3  # what dd-run writes (runtime/artefacts.py); load_distilled reads this and older
NOT_SETS = ("init", "model", "checkpoint", "expert")  # other dd-runner files: weights, not sets
JSON_FIELDS = {"config": dict, "protocol": dict, "provenance": dict, "metrics": dict, "normalisation": dict,
               "class_names": list, "model_config": dict, "trainable": list, "head": list, "hf_config": dict}
# protocol keys DistilledSet reads, per format version (version 2 kept its augmentation in the config)
PROTOCOL_KEYS = {2: ("schedule", "lr", "train_epochs", "train_batch", "train_momentum", "train_weight_decay",
                     "seed", "nets", "batch_size", "precision"),
                 3: ("schedule", "lr", "lr_grid", "train_epochs", "train_batch", "train_momentum",
                     "train_weight_decay", "augment", "seed", "nets", "batch_size", "precision", "models")}
DSA_KEYS = ("strategy", "scale", "rotate", "crop", "cutout", "brightness", "saturation", "contrast")
CONFIG_SECTIONS = ("dataset", "model", "init", "distill", "labels", "eval")


class HeaderError(DataError):
    """A distilled set's header is not what dd-run writes (one line: the file and the field)."""


def format_version(path: Path, meta: Dict[str, str]) -> int:
    """The set's format version; a file that is not a set, or one from a newer dd-runner, is refused."""
    tag = meta.get("format", "")
    if not tag.startswith("dd-runner/") or tag[len("dd-runner/"):] in NOT_SETS:
        raise DataError(f"{path} is not a distilled set written by dd-runner (its header has no dd-runner set format tag)")
    version = tag[len("dd-runner/"):]
    if not version.isdigit():
        raise HeaderError(f"{path}: header field 'format' is {tag!r}, not dd-runner/<version>")
    if int(version) > FORMAT_VERSION:
        writer = _json_or(meta.get("provenance"), {}).get("dd_runner", "a newer version")
        raise DataError(f"{path} was written by dd-runner {writer} (format {tag}); this dd-runner reads up to "
                        f"dd-runner/{FORMAT_VERSION}: upgrade dd-runner to load it")
    return int(version)


def check_header(path: Path, meta: Dict[str, str], tensors: Dict[str, torch.Tensor]) -> int:
    """Check every field a DistilledSet reads; returns the format version."""
    version = format_version(path, meta)

    def fail(field: str, problem: str) -> HeaderError:
        return HeaderError(f"{path}: header field '{field}' {problem} (the file was altered or damaged: "
                           "take it from its run directory again)")

    missing = [k for k in ("data", "targets", "lrs", "classes") if k not in tensors]
    if missing or "epochs" not in meta:
        raise DataError(f"{path} lacks {', '.join(missing) or 'epochs'}: not a complete dd-runner distilled set")
    parsed = {}
    for key, kind in JSON_FIELDS.items():
        if key in meta:
            value = _json_or(meta[key], ValueError)
            if value is ValueError or not isinstance(value, kind):
                raise fail(key, f"is not a JSON {'object' if kind is dict else 'list'}")
            parsed[key] = value
    epochs = _positive_int(meta["epochs"])
    if epochs is None:
        raise fail("epochs", f"is {meta['epochs']!r}, not a positive integer")
    for key in ("steps", "ipc", "iteration"):
        if key in meta and _positive_int(meta[key], zero=key == "iteration") is None:
            raise fail(key, f"is {meta[key]!r}, not a positive integer")
    for key in ("temperature", "alpha", "val_acc"):
        if key in meta and not _finite(meta[key]):
            raise fail(key, f"is {meta[key]!r}, not a number")
    _check_shapes(tensors, meta, epochs, fail)
    if version >= 2:
        for key in ("config", "protocol"):
            if key not in parsed:
                raise fail(key, "is missing")
        absent = [s for s in CONFIG_SECTIONS if s not in parsed["config"]]
        if absent:
            raise fail("config", f"lacks {', '.join(absent)}")
        _check_protocol(parsed["protocol"], version, fail)
    if "teacher_probs" in tensors and not all(k in meta for k in ("temperature", "alpha")):
        raise fail("temperature", "is missing (a set with teacher_probs needs temperature and alpha)")
    return version


def _check_shapes(tensors, meta, epochs: int, fail) -> None:
    data, targets, lrs, classes = (tensors[k] for k in ("data", "targets", "lrs", "classes"))
    if data.dim() < 3:
        raise fail("data", f"has shape {tuple(data.shape)}, not (steps, examples per step, ...)")
    steps, per_step = data.shape[:2]
    if tuple(targets.shape[:2]) != (steps, per_step):
        raise fail("targets", f"has shape {tuple(targets.shape)}; data has {steps} steps of {per_step} examples")
    if tuple(classes.shape) != (per_step,) or classes.is_floating_point():
        raise fail("classes", f"has shape {tuple(classes.shape)} ({classes.dtype}), not {per_step} integer class ids")
    if lrs.dim() != 1 or lrs.numel() not in (steps * epochs, 1):
        raise fail("lrs", f"has shape {tuple(lrs.shape)}, not ({steps * epochs},) = steps x epochs (or (1,) if shared)")
    if "steps" in meta and int(meta["steps"]) != steps:
        raise fail("steps", f"is {meta['steps']} but data holds {steps} steps")
    for key in ("teacher_probs", "attention_labels"):
        if key in tensors and tuple(tensors[key].shape[:2]) != (steps, per_step):
            raise fail(key, f"has shape {tuple(tensors[key].shape)}; data has {steps} steps of {per_step} examples")
    if "attention_labels" in tensors and tensors.get("attention_weight", torch.zeros(2)).numel() != 1:
        raise fail("attention_weight", "is missing or not a scalar (a set with attention_labels needs it)")


def _check_protocol(protocol: dict, version: int, fail) -> None:
    absent = [k for k in PROTOCOL_KEYS[min(version, FORMAT_VERSION)] if k not in protocol]
    if absent:
        raise fail("protocol", f"lacks {', '.join(absent)}")
    if protocol["schedule"] not in ("distilled", "train"):
        raise fail("protocol", f"has schedule {protocol['schedule']!r}, not distilled or train")
    if protocol["lr"] is not None and not (_finite(protocol["lr"]) and float(protocol["lr"]) > 0):
        raise fail("protocol", f"has lr {protocol['lr']!r}, not a positive number or null")
    for key in ("train_epochs", "train_batch", "nets", "batch_size"):
        if protocol[key] is not None and _positive_int(protocol[key]) is None:
            raise fail("protocol", f"has {key} {protocol[key]!r}, not a positive integer")
    if protocol["schedule"] == "train" and protocol["train_epochs"] is None:
        raise fail("protocol", "has schedule train without train_epochs")
    if not isinstance(protocol["seed"], int) or isinstance(protocol["seed"], bool):
        raise fail("protocol", f"has seed {protocol['seed']!r}, not an integer")
    for key in ("train_momentum", "train_weight_decay"):
        if not _finite(protocol[key]):
            raise fail("protocol", f"has {key} {protocol[key]!r}, not a number")
    if version < 3:
        return
    augment = protocol["augment"]
    if not isinstance(augment, dict) or augment.get("name") not in ("none", "dsa"):
        raise fail("protocol", f"has augment {augment!r}, not {{'name': 'none'}} or DSA's settings")
    lacking = [k for k in DSA_KEYS if k not in augment] if augment["name"] == "dsa" else []
    if lacking:
        raise fail("protocol", f"has augment dsa without {', '.join(lacking)}")
    models = protocol["models"]
    if not isinstance(models, dict) or not all(isinstance(m, dict) and isinstance(m.get("model"), dict) and "lr" in m
                                               for m in models.values()):
        raise fail("protocol", "has models that are not {architecture: {'lr': ..., 'model': {...}}}")


def _json_or(text: Optional[str], default):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _positive_int(value, zero: bool = False) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        number = int(value)
    else:
        return None
    return number if number > 0 or (zero and number == 0) else None


def _finite(value) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False

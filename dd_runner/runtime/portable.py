"""What makes `distilled.safetensors` self-contained: the initial weights the set was distilled for, the
resolved config (model, normalisation, labels, schedule), the evaluation protocol and provenance.

`dd_runner.reuse.distilled.DistilledSet` reads these back (`model()`, `train()`, `evaluate()`), so a
set can be reused and its figure reproduced without a run directory or dd-run internals.

theta_0 (fixed and pretrained init, and the fixed body of a transformer under any init) is stored as the
module's full parameter state: inside the file as `init/<name>` tensors when it is small (a LeNet), or in
a sibling `init.safetensors` named in the header (with its sha256) when it is large (a transformer).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from omegaconf import OmegaConf

from dd_runner.core.files import atomic_write_bytes, dumps

INIT_FILE = "init.safetensors"
EMBED_LIMIT = 4_000_000  # parameters kept inside distilled.safetensors (16 MB in fp32); more go to init.safetensors


RUNTIME_KEYS = ("output_dir", "resume", "device", "logger", "checkpoint")  # where and how it ran, not what


def config_dict(cfg, runtime: bool = True) -> dict:
    """The resolved config as plain data; runtime=False leaves out where and how the run ran (so the same
    set written from two directories, or resumed, has the same bytes)."""
    out = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return out if runtime else {k: v for k, v in out.items() if k not in RUNTIME_KEYS}


def config_hash(cfg) -> str:
    """sha256 of the resolved config (runtime keys aside) as sorted JSON: equal configs, equal hashes."""
    return hashlib.sha256(json.dumps(config_dict(cfg, runtime=False), sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the dd-runner checkout this runs from, or '' (an installed wheel, no git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance() -> Dict[str, str]:
    import platform

    import dd_runner

    try:
        import transformers
        tf_version = transformers.__version__
    except ImportError:
        tf_version = ""
    return {"dd_runner": dd_runner.__version__, "git_commit": git_commit(), "torch": torch.__version__,
            "transformers": tf_version, "python": platform.python_version()}


def _number(value) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def augment_record(cfg) -> Dict[str, object]:
    """eval.augment as the evaluation networks met it: {"name": "none"}, or DSA with its strategy and every
    augment.* parameter (eval/protocol.py make_augment_each builds the transform from exactly this)."""
    if cfg.eval.augment != "dsa":
        return {"name": "none"}
    return {**config_dict(cfg.augment), "name": "dsa"}


def protocol(cfg, metrics: Optional[Dict[str, float]] = None) -> Dict[str, object]:
    """Everything eval/protocol.py `make_schedule` and `make_augment_each` used to produce the reported
    figures, so `DistilledSet.train` replays them with the same code: the schedule and its optimiser, the
    augmentation, the seed every order and draw derives from, the nets and the precision. `lr` is the
    fixed lr the set was trained with when its own lrs were not used (eval.schedule=train, or no learned
    lrs: tuned on validation over `lr_grid`), known after evaluation; `models` holds each eval.models
    architecture's model config and its own tuned lr."""
    from dd_runner.config.model_options import model_config

    e, metrics = cfg.eval, metrics or {}
    fixed = cfg.init.mode == "fixed" or (cfg.init.mode == "pretrained" and not cfg.init.resample)
    return {"schedule": e.schedule, "lr": _number(metrics.get("test/lr")), "lr_grid": list(e.lr_grid),
            "train_epochs": e.train_epochs, "train_batch": e.train_batch, "train_momentum": e.train_momentum,
            "train_weight_decay": e.train_weight_decay, "augment": augment_record(cfg), "seed": cfg.seed,
            "nets": e.nets, "batch_size": e.batch_size, "precision": cfg.precision,
            "test_split": cfg.dataset.get("test_split"), "labels": cfg.labels.type,
            "attention": cfg.labels.get("attention", "none"),
            "nets_drawn": "theta_0" if fixed else "unseen draws of p(theta)",
            "models": {option: {"lr": _number(metrics.get(f"test/{option}/lr")),
                                "model": config_dict(model_config(option))}
                       for option in e.models if option != cfg.model.name}}


def initial_state(cfg, learner, inits) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(the module's parameter state at theta_0, header entries describing the network). Empty state for a
    random init of an image model: every parameter is drawn, nothing is fixed."""
    meta: Dict[str, str] = {"trainable": json.dumps(list(learner.names))}
    hf_config = getattr(getattr(learner.module, "config", None), "to_json_string", None)
    if hf_config is not None:  # transformers: the architecture, so no hub or local directory is needed
        meta["hf_config"] = hf_config(use_diff=False)
        meta["hf_class"] = type(learner.module).__name__
        meta["head"] = json.dumps(list(getattr(learner, "redrawn", [])))
    theta0 = inits.theta0 if inits is not None else None
    if theta0 is None and hf_config is None:
        return {}, meta
    state = {n: p.detach() for n, p in learner.module.named_parameters()}
    if theta0 is not None:
        state.update(learner.as_dict(theta0))
    elif hasattr(learner, "base"):  # random init of a transformer: its fixed body, heads drawn per net
        state.update(learner.as_dict(learner.base))
    return {n: t.detach().float().cpu() if t.is_floating_point() else t.cpu() for n, t in state.items()}, meta


def place_initial_state(directory: Path, state: Dict[str, torch.Tensor], limit: Optional[int] = None):
    """(tensors to embed as init/<name>, header entries): small states go inside, large ones to
    `init.safetensors` beside the set, written here (atomically) and named with their sha256."""
    if not state:
        return {}, {"init_state": "none"}
    if sum(t.numel() for t in state.values()) <= (EMBED_LIMIT if limit is None else limit):
        return {f"init/{n}": t for n, t in state.items()}, {"init_state": "embedded"}
    payload = dumps(state, {"format": "dd-runner/init"})
    atomic_write_bytes(directory / INIT_FILE, payload)
    return {}, {"init_state": INIT_FILE, "init_sha256": hashlib.sha256(payload).hexdigest()}


def portable_metadata(cfg, metrics: Optional[Dict[str, float]] = None) -> Dict[str, str]:
    out = {"config": json.dumps(config_dict(cfg, runtime=False), sort_keys=True), "config_hash": config_hash(cfg),
           "provenance": json.dumps(provenance(), sort_keys=True),
           "protocol": json.dumps(protocol(cfg, metrics), sort_keys=True),
           "model_config": json.dumps(config_dict(cfg.model), sort_keys=True)}
    if metrics:
        out["metrics"] = json.dumps({k: v for k, v in metrics.items() if k.startswith(("test/", "val/"))
                                     and isinstance(v, (int, float))}, sort_keys=True)
    return out

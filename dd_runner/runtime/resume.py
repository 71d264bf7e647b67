"""Continuing a run: `dd-run resume=<run dir> [overrides]`, or re-running into the same output directory.

- resume=DIR takes DIR's own config (config.yaml) plus the overrides given with it, and continues from
  DIR's checkpoint. Overrides may change how the run continues (iterations, lr, device, logging) but not
  what its state is made of (dataset, model, method, labels, steps, epochs, ipc, ...).
- Re-running the same config into a directory that holds its checkpoint continues it; if the directory
  holds a finished run (metrics.json) of the same config, its metrics are returned without recomputing;
  a directory holding a different config is refused (one line listing the differences).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional, Sequence

from omegaconf import OmegaConf

from dd_runner.core.errors import ConfigError, DataError
from dd_runner.core.files import read_json, read_yaml
from dd_runner.runtime.checkpoint import (
    CHECKPOINT,
    config_differences,
    config_fingerprint,
    config_hash,
    read_checkpoint_header,
)
from dd_runner.runtime.run_dir import claim_resume_dir

log = logging.getLogger(__name__)

# What a checkpoint's tensors and stream are made of: these cannot change when continuing a run.
STRUCTURAL = ("mode", "seed", "dataset.", "model.", "method.", "init.", "labels.", "distill.steps",
              "distill.epochs", "distill.ipc", "distill.seq_len", "distill.init_from", "distill.batch_size",
              "distill.engine")


def resumed_config(cfg, overrides: Sequence[str] = ()):
    """The config of the run in cfg.resume, with `overrides` ("key=value") applied on top."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from dd_runner.config.schema import Config

    run_dir = claim_resume_dir(cfg.resume)
    saved = saved_config(run_dir / "config.yaml", Config)
    resumed = saved.copy()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key in ("resume", "output_dir") or key.startswith("hydra"):
            continue
        if "." not in key and OmegaConf.is_dict(resumed.get(key)):
            raise ConfigError(f"resume: '{override.input_line}' changes the {key} group of the run; "
                              "start a new run for that")
        OmegaConf.update(resumed, key, override.value(), merge=False)
    before, after = config_fingerprint(saved), config_fingerprint(resumed)
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    frozen = [k for k in changed if k.startswith(STRUCTURAL) or k in STRUCTURAL]
    if frozen:
        raise ConfigError(f"resume: {', '.join(frozen)} cannot change when continuing a run (the checkpoint "
                          "is made of them); start a new run instead")
    if changed:
        log.warning("resuming %s with changed settings: %s", run_dir, "; ".join(config_differences(
            {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed})))
    resumed.resume = str(run_dir)
    resumed.output_dir = str(run_dir)
    return resumed


def saved_config(path: Path, schema):
    """A run directory's config.yaml, checked against the schema: DataError naming the file if it is not
    YAML or not a dd-run config (a key the schema lacks, a value of the wrong type)."""
    from omegaconf.errors import OmegaConfBaseException

    raw = read_yaml(path, hint="it is not the config.yaml dd-run wrote; start a new run")
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), raw)
    except OmegaConfBaseException as e:
        reason = str(e).strip().splitlines()[0][:160]
        raise DataError(f"{path} is not a dd-run config ({type(e).__name__}: {reason}): it is not the config.yaml "
                        "dd-run wrote; start a new run") from None


def prior_run(out: Path, cfg, explicit_resume: bool) -> Dict[str, object]:
    """What `out` already holds for this config: {"metrics": ...} if finished, {"checkpoint_meta": ...} if
    it can be continued, {} if it is fresh. Refuses a directory that holds another config's run."""
    checkpoint = out / CHECKPOINT
    if not checkpoint.is_file():
        if explicit_resume:
            raise ConfigError(f"resume={out}: no {CHECKPOINT} there (the run stopped before its first "
                              "checkpoint, or checkpoint.every=0); start it again")
        return {}
    meta = read_checkpoint_header(checkpoint)
    if meta.get("config_hash") != config_hash(cfg) and not explicit_resume:
        saved = out / "config.yaml"
        diffs = config_differences(config_fingerprint(read_yaml(saved)), config_fingerprint(cfg)) if saved.is_file() else []
        raise ConfigError(f"{out} holds a run of another config ({'; '.join(diffs[:3]) or 'unknown config'}): "
                          f"continue it with dd-run resume={out} [overrides], or choose another output_dir")
    metrics = out / "metrics.json"
    if metrics.is_file() and meta.get("config_hash") == config_hash(cfg):
        finished = read_json(metrics, hint=f"delete it and finish the run from its last checkpoint with dd-run resume={out}")
        return {"metrics": finished, "checkpoint_meta": meta}
    return {"checkpoint_meta": meta}


def wandb_id(prior: Dict[str, object]) -> Optional[str]:
    meta = prior.get("checkpoint_meta") or {}
    return meta.get("wandb_id") or None

"""Checks that span fields or need knowledge of the registries: ranges, names, impossible combinations.

They run before any data is loaded (in `dd-run`'s pre-flight and again in `run`), and each failure is
one `ConfigError` line naming the setting to change.
"""

from __future__ import annotations

from typing import Iterable

from dd_runner.core.errors import ConfigError, unknown


def _one_of(setting: str, value, valid: Iterable[str]) -> None:
    valid = list(valid)
    if value not in valid:
        raise unknown(setting, value, valid)


def _positive(cfg, *keys: str, allow_zero: bool = False) -> None:
    for key in keys:
        value = cfg
        for part in key.split("."):
            value = value[part]
        if value is None:
            continue
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"{key}={value} is out of range: it must be {bound}")


def validate(cfg) -> None:
    from dd_runner.data import LOADERS
    from dd_runner.engines import ENGINES
    from dd_runner.eval.baselines import BASELINE_NAMES
    from dd_runner.methods import METHODS
    from dd_runner.models import ARCHS
    from dd_runner.models.inits import INIT_MODES
    from dd_runner.synthetic.set import LABEL_TYPES

    _one_of("mode", cfg.mode, ("distill", "baselines", "train", "experts"))
    _one_of("precision", cfg.precision, ("fp32", "bf16", "fp16"))
    if cfg.device not in ("auto", "cpu") and not str(cfg.device).startswith("cuda"):
        raise unknown("device", cfg.device, ("auto", "cpu", "cuda"))
    _one_of("dataset.loader", cfg.dataset.loader, LOADERS.names())
    _one_of("dataset.task", cfg.dataset.task, ("classification", "language_modeling"))
    _one_of("model.arch", cfg.model.arch, ARCHS.names())
    _one_of("init.mode", cfg.init.mode, INIT_MODES)
    _one_of("labels.type", cfg.labels.type, LABEL_TYPES)
    _one_of("method.name", cfg.method.name, METHODS.names())
    _one_of("logger.name", cfg.logger.name, ("wandb", "none"))
    _one_of("logger.mode", cfg.logger.mode, ("offline", "online", "disabled"))
    _one_of("distill.engine", cfg.distill.engine, ENGINES.names())
    _one_of("distill.init_from", cfg.distill.init_from, ("noise", "real"))
    _one_of("eval.select", cfg.eval.select, ("best", "last"))
    _one_of("train.optimizer", cfg.train.optimizer, ("adam", "sgd"))
    _one_of("distill.optimizer", cfg.distill.optimizer, ("adam", "sgd"))
    _one_of("eval.schedule", cfg.eval.schedule, ("distilled", "train"))
    _one_of("augment.name", cfg.augment.name, ("none", "dsa"))
    for name in cfg.eval.baselines:
        _one_of("eval.baselines entry", name, BASELINE_NAMES)
    if cfg.mode == "baselines" and not cfg.eval.baselines:
        raise ConfigError(f"mode=baselines evaluates eval.baselines, which is empty: name some of {', '.join(BASELINE_NAMES)}")

    _positive(cfg, "distill.steps", "distill.epochs", "distill.ipc", "distill.iterations", "distill.lr",
              "distill.init_lr", "distill.batch_size", "distill.sample_nets", "distill.clip_grad",
              "distill.decay_every", "distill.decay_factor", "distill.seq_len", "eval.nets", "eval.batch_size",
              "eval.val_nets", "eval.tune_nets", "train.epochs", "train.lr", "train.batch_size",
              "logger.log_every", "dataset.max_length")
    _positive(cfg, "model.width", "model.depth", "eval.train_epochs", "eval.train_batch", "experts.count",
              "experts.epochs", "experts.lr", "experts.batch_size", "labels.temperature")
    _positive(cfg, "distill.recompute_every", "distill.vmap_chunk", "distill.real_chunk", "eval.every",
              "eval.full_data_nets", "train.weight_decay", "labels.init_scale", "checkpoint.every",
              allow_zero=True)
    if cfg.distill.decay_factor > 1:
        raise ConfigError(f"distill.decay_factor={cfg.distill.decay_factor} must be in (0, 1]")
    if cfg.distill.average is not None and not 0 < cfg.distill.average < 1:
        raise ConfigError(f"distill.average={cfg.distill.average} must be in (0, 1) (the running average's decay; null: off)")
    if len(cfg.distill.betas) != 2 or not all(0 <= b < 1 for b in cfg.distill.betas):
        raise ConfigError(f"distill.betas={list(cfg.distill.betas)} must be two numbers in [0, 1)")
    if not cfg.eval.lr_grid or any(lr <= 0 for lr in cfg.eval.lr_grid):
        raise ConfigError(f"eval.lr_grid={list(cfg.eval.lr_grid)} must be a non-empty list of positive lrs")

    _check_method(cfg)
    if cfg.model.modality != cfg.dataset.modality:
        raise ConfigError(f"model={cfg.model.name} takes {cfg.model.modality} data but dataset={cfg.dataset.name} "
                          f"is {cfg.dataset.modality}; choose a {cfg.dataset.modality} model")
    if cfg.labels.type == "teacher" and not cfg.labels.teacher:
        raise ConfigError("labels=teacher needs labels.teacher=PATH: a model.safetensors from `dd-run mode=train` "
                          "with the same model config")
    if not 0 <= cfg.labels.alpha <= 1:
        raise ConfigError(f"labels.alpha={cfg.labels.alpha} must be in [0, 1]")
    if cfg.augment.name != "none" and cfg.dataset.modality != "image":
        raise ConfigError(f"augment={cfg.augment.name} transforms images; dataset={cfg.dataset.name} is "
                          f"{cfg.dataset.modality}: use augment=none")
    if cfg.init.mode == "pretrained" and not cfg.init.checkpoint and cfg.model.modality == "image":
        raise ConfigError("init=pretrained needs init.checkpoint=PATH: train one with `dd-run mode=train` "
                          "(it writes <run dir>/model.safetensors)")
    from dd_runner.config.validate_text import validate_text

    validate_text(cfg)


def _check_method(cfg) -> None:
    """Method-specific settings (the method group's schemas carry them)."""
    m = cfg.method
    if m.name in ("gradient_matching", "distribution_matching"):
        _positive(cfg, "method.batch_real")
    if m.name == "gradient_matching":
        _one_of("method.distance", m.distance, ("layerwise", "mse"))
        _positive(cfg, "method.outer_loop", "method.inner_loop", "method.lr_net")
    if m.name == "distribution_matching" and cfg.labels.type in ("soft", "unrestricted"):
        raise ConfigError(f"method=distribution_matching does not use labels, so labels={cfg.labels.type} would "
                          "never be learned; use labels=hard (or labels=teacher for evaluation)")
    if m.name == "trajectory_matching":
        _positive(cfg, "method.expert_epochs", "method.max_start_epoch")
        if not m.experts and cfg.mode == "distill":
            raise ConfigError("method=trajectory_matching needs method.experts=DIR: train experts with "
                              "`dd-run mode=experts` (same dataset and model), then pass <its run dir>/experts")

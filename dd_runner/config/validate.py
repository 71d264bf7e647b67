"""Checks that span fields or need knowledge of the registries: ranges, names, impossible combinations.

They run before any data is loaded (in `dd-run`'s pre-flight and again in `run`), and each failure is
one `ConfigError` line naming the setting to change.
"""

from __future__ import annotations

from typing import Iterable

from dd_runner.config.validate_numbers import check_numbers
from dd_runner.core.errors import ConfigError, unknown


def _one_of(setting: str, value, valid: Iterable[str]) -> None:
    valid = list(valid)
    if value not in valid:
        raise unknown(setting, value, valid)


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
    if cfg.eval.augment is not None:
        _one_of("eval.augment", cfg.eval.augment, ("none", "dsa"))
    for name in cfg.eval.baselines:
        _one_of("eval.baselines entry", name, BASELINE_NAMES)
    if cfg.mode == "baselines" and not cfg.eval.baselines:
        raise ConfigError(f"mode=baselines evaluates eval.baselines, which is empty: name some of {', '.join(BASELINE_NAMES)}")

    _one_of("model.weight_init", cfg.model.weight_init, ("xavier", "kaiming", "default", "transformers"))
    check_numbers(cfg)
    if len(cfg.distill.betas) != 2:
        raise ConfigError(f"distill.betas={list(cfg.distill.betas)} must be two numbers in [0, 1)")
    if not cfg.eval.lr_grid:
        raise ConfigError(f"eval.lr_grid={list(cfg.eval.lr_grid)} must be a non-empty list of positive lrs")

    _check_method(cfg)
    _check_norm(cfg)
    _check_eval_models(cfg)
    if cfg.model.modality != cfg.dataset.modality:
        raise ConfigError(f"model={cfg.model.name} takes {cfg.model.modality} data but dataset={cfg.dataset.name} "
                          f"is {cfg.dataset.modality}; choose a {cfg.dataset.modality} model")
    if cfg.labels.type == "teacher" and not cfg.labels.teacher:
        raise ConfigError("labels=teacher needs labels.teacher=PATH: a model.safetensors from `dd-run mode=train` "
                          "with the same model config")
    if cfg.eval.augment not in (None, "none") and cfg.dataset.modality != "image":
        raise ConfigError(f"eval.augment={cfg.eval.augment} transforms images; dataset={cfg.dataset.name} is "
                          f"{cfg.dataset.modality}: use eval.augment=none")
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
    if m.name == "gradient_matching":
        _one_of("method.distance", m.distance, ("layerwise", "mse"))
    if m.name == "distribution_matching" and cfg.labels.type in ("soft", "unrestricted"):
        raise ConfigError(f"method=distribution_matching does not use labels, so labels={cfg.labels.type} would "
                          "never be learned; use labels=hard (or labels=teacher for evaluation)")
    if m.name == "trajectory_matching":
        if not m.experts and cfg.mode == "distill":
            raise ConfigError("method=trajectory_matching needs method.experts=DIR: train experts with "
                              "`dd-run mode=experts` (same dataset and model), then pass <its run dir>/experts")


NORMED_ARCHS = ("alexnet", "vgg11", "resnet18")


def _check_norm(cfg) -> None:
    """model.norm: which layer the benchmark architectures normalise with, where it means something."""
    norm = cfg.model.norm
    if norm is None:
        return
    if cfg.model.arch not in NORMED_ARCHS:
        raise ConfigError(f"model.norm={norm} has no effect on model={cfg.model.name}: it chooses the normalisation "
                          f"of {', '.join(NORMED_ARCHS)}")
    _one_of("model.norm", norm, ("instance", "batch", "none"))
    if norm == "batch" and cfg.method.name == "performance_matching" and cfg.mode == "distill":
        raise ConfigError("method=performance_matching differentiates the real loss of the trained network, which "
                          "batch norm evaluates with running statistics it updates in place (no gradient flows "
                          "through them): use model.norm=instance, or a matching method")


def _check_eval_models(cfg) -> None:
    """eval.models: image model options; a text set lives in its own model's embedding space."""
    from dd_runner.config.model_options import model_config

    if not cfg.eval.models:
        return
    if cfg.dataset.modality != "image":
        raise ConfigError(f"eval.models evaluates the set on other networks, but a {cfg.dataset.modality} set is a "
                          f"sequence of input embeddings of model={cfg.model.name}, which no other network reads: "
                          "leave eval.models empty")
    for option in cfg.eval.models:
        other = model_config(option)
        if other.modality != "image":
            raise ConfigError(f"eval.models entry {option} is a {other.modality} model; dataset={cfg.dataset.name} "
                              "holds images: name image models (mlp, lenet, convnet, alexnet, vgg11, resnet18)")

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


def check_choices(cfg) -> None:
    """Every option with allowed values (`choices=` in the schema) holds one of them; a list holds them in
    each entry. model.norm is checked with the model it applies to (_check_norm)."""
    from omegaconf import OmegaConf

    from dd_runner.config.fields import allowed
    from dd_runner.config.schema import all_settings, schema_of

    method_keys = {s.key for s in all_settings() if s.key.startswith("method.")}
    own = {f"method.{f}" for f in schema_of("method", cfg.method.name).__dataclass_fields__}
    for setting in all_settings():
        if setting.choices is None or setting.key in SEPARATE or (setting.key in method_keys and setting.key not in own):
            continue
        value = OmegaConf.select(cfg, setting.key)
        if value is None:
            continue
        for entry in (list(value) if OmegaConf.is_list(value) else [value]):
            if _import_path(setting, entry):
                continue
            _one_of(f"{setting.key} entry" if OmegaConf.is_list(value) else setting.key, entry, allowed(setting.choices))


def _import_path(setting, entry) -> bool:
    """A registry that takes import paths for this key (model.arch: 'package.module:function', a user's own
    builder): the path is imported here, so one that fails or is not callable is one line before any run."""
    if ":" not in str(entry) or not isinstance(setting.choices, str):
        return False
    import importlib

    module, _, attr = setting.choices.partition(":")
    registry = getattr(importlib.import_module(module), attr)
    if getattr(registry, "import_setting", None) != setting.key:
        return False
    registry.get(str(entry))
    return True


SEPARATE = ("device", "model.norm")  # cuda:N; a norm only where the model has one


def validate(cfg) -> None:
    from dd_runner.config.keys import check_schema_keys
    from dd_runner.eval.baselines import BASELINE_NAMES

    check_schema_keys(cfg)  # '+distill.stepz=3' is force-added by Hydra: refused here like a typo
    check_choices(cfg)
    if cfg.device not in ("auto", "cpu") and not str(cfg.device).startswith("cuda"):
        raise unknown("device", cfg.device, ("auto", "cpu", "cuda"))
    if cfg.mode == "baselines" and not cfg.eval.baselines:
        raise ConfigError(f"mode=baselines evaluates eval.baselines, which is empty: name some of {', '.join(BASELINE_NAMES)}")

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
    if m.name == "distribution_matching" and cfg.labels.type in ("soft", "unrestricted"):
        raise ConfigError(f"method=distribution_matching does not use labels, so labels={cfg.labels.type} would "
                          "never be learned; use labels=hard (or labels=teacher for evaluation)")
    if m.name == "trajectory_matching":
        if not m.experts and cfg.mode == "distill":
            raise ConfigError("method=trajectory_matching needs method.experts=DIR: train experts with "
                              "`dd-run mode=experts` (same dataset and model), then pass <its run dir>/experts")


NORMED_ARCHS = ("convnet", "alexnet", "vgg11", "resnet18")


def _check_norm(cfg) -> None:
    """model.norm: which layer the benchmark architectures normalise with, where it means something."""
    norm = cfg.model.norm
    if norm is None:
        return
    if cfg.model.arch not in NORMED_ARCHS and ":" not in cfg.model.arch:  # a user's builder reads it as it likes
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

"""Checks specific to text datasets and models (called by `validate`): labels, init modes and methods
that only make sense for some tasks, before anything is loaded."""

from __future__ import annotations

from dd_runner.core.errors import ConfigError


def validate_text(cfg) -> None:
    text, classification = cfg.dataset.modality == "text", cfg.dataset.task == "classification"
    if cfg.labels.attention != "none" and not (text and classification):
        raise ConfigError(f"labels.attention={cfg.labels.attention} needs a text classification dataset and a "
                          f"transformer classifier; use labels.attention=none with dataset={cfg.dataset.name}")
    if cfg.method.name == "logit_match" and cfg.dataset.task != "language_modeling":
        raise ConfigError(f"method=logit_match matches next-token distributions: it needs a language-modelling "
                          f"dataset (e.g. dataset=english_quotes), not dataset={cfg.dataset.name}")
    if cfg.method.name == "logit_match" and cfg.labels.type != "hard":
        raise ConfigError(f"method=logit_match learns no labels (its targets are the model's own next-token "
                          f"predictions): use labels=hard, not labels={cfg.labels.type}")
    if cfg.labels.type == "teacher" and cfg.dataset.task != "classification":
        raise ConfigError(f"labels=teacher distils a classifier's class probabilities; dataset={cfg.dataset.name} is "
                          f"{cfg.dataset.task}: use labels=hard, soft or unrestricted")
    if (cfg.model.weight_init == "transformers") != (cfg.model.modality == "text"):
        raise ConfigError(f"model.weight_init={cfg.model.weight_init} does not fit model={cfg.model.name}: transformers "
                          "draw p(theta) from their own initialisation (weight_init=transformers), other models "
                          "from xavier, kaiming or default")
    if text and cfg.init.mode == "pretrained" and not cfg.init.checkpoint and not cfg.model.pretrained:
        raise ConfigError("init=pretrained needs pretrained weights: model.pretrained=true, or init.checkpoint=PATH "
                          "(a model.safetensors from `dd-run mode=train`)")

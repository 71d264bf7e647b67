"""The options of the `model` group as configs of their own, outside the run's composed config: the
architectures a distilled set is also evaluated on (`eval.models`) are named like `model=` options and
built from their YAML files (the papers' settings; the run's model.* overrides apply to its own model only)."""

from __future__ import annotations

from importlib import resources
from typing import List

from omegaconf import OmegaConf

from dd_runner.core.errors import unknown


def _folder():
    return resources.files("dd_runner.conf") / "model"


def model_options() -> List[str]:
    return sorted(p.name[:-len(".yaml")] for p in _folder().iterdir() if p.name.endswith(".yaml"))


def model_config(option: str):
    """conf/model/<option>.yaml on the ModelConfig schema (its `defaults` list names that schema)."""
    from dd_runner.config.schema import ModelConfig

    if option not in model_options():
        raise unknown("eval.models entry", option, model_options())
    raw = OmegaConf.load(str(_folder() / f"{option}.yaml"))
    raw.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(ModelConfig), raw)


class _ModelOptions:
    """The model options as a registry-like listing (`names()`), read when needed: the allowed values of
    eval.models in the schema."""

    @staticmethod
    def names() -> List[str]:
        return model_options()


MODEL_OPTIONS = _ModelOptions()

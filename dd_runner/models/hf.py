"""Hugging Face transformers as dd-runner models: `model.arch=hf_classifier` (sequence classification,
e.g. DistilBERT, BERT, MiniLM) and `model.arch=hf_causal_lm` (e.g. GPT-Neo).

`model.name_or_path` is a hub id or a local directory. `model.pretrained=true` loads its weights; the
parameters the checkpoint lacks (a classifier head) are created by transformers and form the *head*
that init=fixed / random draw afresh. `model.pretrained=false` builds the architecture with random
weights: from the local directory's config.json, or else from `model.architecture` (the hub model's
config, recorded in the YAML so that no network is needed), with `model.config_overrides` on top
(`{n_layers: 2, dim: 32}` gives a tiny model for tests). Attention is always eager: the SDPA kernels
have no double backward, and attention labels need the attention probabilities.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from pathlib import Path
from typing import Any, Dict, Set, Tuple

import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError

from dd_runner.core.errors import ConfigError, DataError
from dd_runner.core.files import safetensors_metadata
from dd_runner.data.hub import quiet_hub

log = logging.getLogger(__name__)


def _plain(node) -> Dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node or {})


def _dropout_fields(config, dropout: float) -> Dict[str, float]:
    """Every dropout probability of the config (names differ per family: dropout, attention_dropout,
    hidden_dropout_prob, seq_classif_dropout, resid_dropout, ...)."""
    return {key: float(dropout) for key, value in config.to_dict().items()
            if "dropout" in key and (value is None or isinstance(value, float))}


def _rebuilt(config, changes: Dict[str, Any]):
    """The config with `changes` passed through its constructor, so that derived fields follow them
    (GPT-Neo's attention_layers from attention_types and num_layers); aliases such as num_hidden_layers
    name the real field (DistilBERT's n_layers)."""
    cls = type(config)
    changes = {getattr(cls, "attribute_map", {}).get(k, k): v for k, v in changes.items()}
    if not dataclasses.is_dataclass(cls):  # transformers 4: no declared fields, attributes are set directly
        for key, value in changes.items():
            setattr(config, key, value)
        return config
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown_keys = sorted(set(changes) - fields)
    if unknown_keys:
        raise ConfigError(f"model.config_overrides: {unknown_keys} are not fields of {cls.__name__}")
    return cls(**{**{k: v for k, v in config.to_dict().items() if k in fields}, **changes})


def build_config(model_cfg, tokenizer, num_labels=None):
    """The transformers config of the model to build, with overrides, dropout and label count applied."""
    from transformers import AutoConfig

    source = model_cfg.name_or_path
    local = bool(source) and Path(str(source)).expanduser().is_dir()
    try:
        if model_cfg.pretrained or local or not model_cfg.architecture:
            if not source:
                raise ConfigError(f"model={model_cfg.name} needs model.name_or_path (or model.architecture with pretrained=false)")
            config = AutoConfig.from_pretrained(str(Path(str(source)).expanduser()) if local else str(source),
                                                trust_remote_code=model_cfg.trust_remote_code)
        else:
            arch = _plain(model_cfg.architecture)
            model_type = arch.pop("model_type", None)
            if not model_type:
                raise ConfigError("model.architecture needs a model_type (e.g. distilbert, bert, gpt_neo)")
            config = AutoConfig.for_model(model_type, **arch)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot load the config of model.name_or_path={source} ({type(e).__name__}; offline?): point it at "
                        "a local directory, or set model.pretrained=false to build from model.architecture") from None
    changes = _plain(model_cfg.config_overrides)
    if not model_cfg.pretrained and "vocab_size" not in changes:
        changes["vocab_size"] = len(tokenizer)  # random weights: the embedding table fits the tokenizer
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None and (not model_cfg.pretrained or getattr(config, name, None) is None):
            changes.setdefault(name, value)
    if model_cfg.dropout is not None:
        changes.update(_dropout_fields(config, model_cfg.dropout))
    config = _rebuilt(config, changes)
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: "
                          "use the model's own tokenizer (model.tokenizer)")
    if num_labels is not None:
        config.num_labels = num_labels
    return config


def load_module(model_cfg, tokenizer, task: str, num_labels=None) -> Tuple[Any, Set[str]]:
    """(module, names of the parameters that were created rather than loaded: the head)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForCausalLM
    with quiet_hub(model_cfg.name_or_path):
        config = build_config(model_cfg, tokenizer, num_labels)
    kwargs = dict(attn_implementation="eager", trust_remote_code=model_cfg.trust_remote_code)
    load_kwargs = dict(dtype=torch.float32)  # parameters stay fp32 whatever the checkpoint stores (AMP autocasts)
    with quiet_hub(model_cfg.name_or_path):
        if not model_cfg.pretrained:
            module = auto.from_config(config, **kwargs)
            return module, {n for n, _ in module.named_parameters()}
        source = str(Path(str(model_cfg.name_or_path)).expanduser())
        check_weight_files(source)
        try:
            module, info = auto.from_pretrained(source, config=config, output_loading_info=True, **kwargs,
                                                **load_kwargs)
        except (OSError, ValueError, RuntimeError, EOFError, SafetensorError, pickle.UnpicklingError) as e:
            raise DataError(f"cannot load the weights of model.name_or_path={model_cfg.name_or_path} "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:160]}); point it at a local directory, "
                            "or set model.pretrained=false for random weights") from None
    created = set(info.get("missing_keys", ())) | {k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ())}
    head = {n for n, _ in module.named_parameters() if n in created}
    log.info("loaded %s (%s); created by transformers: %s", model_cfg.name_or_path, type(module).__name__,
             ", ".join(sorted(head)) or "nothing")
    return module, head


def check_weight_files(source: str) -> None:
    """The safetensors weights of a local model directory, checked before transformers reads them: a file cut
    short by an interrupted download or copy is one line naming it (transformers would raise deep inside)."""
    folder = Path(source)
    if not folder.is_dir():
        return  # a hub id: the hub client verifies what it downloads
    for path in sorted(folder.glob("*.safetensors")):
        safetensors_metadata(path, hint="download or copy the model again, or point model.name_or_path elsewhere")


def check_positions(config, model_cfg, data, distill_cfg) -> None:
    """Real sequences (dataset.max_length) and synthetic ones (distill.seq_len) must fit the model's position
    embeddings: beyond them a transformer indexes past its table (an IndexError on a CPU, a device-side
    assert on a GPU, after the data was tokenised and the run set up)."""
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not positions:
        return
    lengths = {"dataset.max_length": int(data.example_shape[0])}
    if distill_cfg is not None:
        lengths["distill.seq_len"] = int(distill_cfg.seq_len)
    for key, length in lengths.items():
        if length > positions:
            raise ConfigError(f"{key}={length} is out of range for model={model_cfg.name}: it must be in [1, {positions}] "
                              f"(the model's max_position_embeddings); lower {key}")


def _learner_options(model_cfg, data, distill_cfg) -> Dict[str, Any]:
    """Synthetic sequences are distill.seq_len long (without a distill config: as long as real ones)."""
    return dict(pretrained=model_cfg.pretrained, pad_id=data.tokenizer.pad_token_id or 0,
                seq_len=distill_cfg.seq_len if distill_cfg is not None else data.example_shape[0])


def build_hf_classifier(model_cfg, data, device, precision, distill_cfg=None):
    from dd_runner.models.transformer import TextClassifierLearner

    if data.modality != "text" or data.task != "classification":
        raise ConfigError(f"model={model_cfg.name} classifies text; dataset={data.name} is {data.modality} {data.task}")
    module, head = load_module(model_cfg, data.tokenizer, "classification", data.num_classes)
    check_positions(module.config, model_cfg, data, distill_cfg)
    return TextClassifierLearner(module, device, precision, head=head, **_learner_options(model_cfg, data, distill_cfg))


def build_hf_causal_lm(model_cfg, data, device, precision, distill_cfg=None):
    from dd_runner.models.transformer import CausalLMLearner

    if data.modality != "text" or data.task != "language_modeling":
        raise ConfigError(f"model={model_cfg.name} is a language model; dataset={data.name} is {data.modality} {data.task}")
    module, head = load_module(model_cfg, data.tokenizer, "language_modeling")
    check_positions(module.config, model_cfg, data, distill_cfg)
    return CausalLMLearner(module, device, precision, head=head, **_learner_options(model_cfg, data, distill_cfg))

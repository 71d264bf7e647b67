"""The network side of a loaded distilled set: rebuild the model it was distilled for from its header
(no run directory, hub or local model directory needed), and wrap any user module in the learner the run
trained and measured networks with, so `DistilledSet.train` / `evaluate` apply the run's exact code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Optional

import torch
from torch import nn

from dd_runner.core.device import Precision
from dd_runner.core.errors import DataError
from dd_runner.models.learner import Learner

INIT_PREFIX = "init/"
ARCH_ATTRIBUTE = "dd_runner_arch"  # set on a module model(arch=...) built: which eval.models column train() replays


def read_initial_state(path: Path, meta: Dict[str, str], tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """theta_0's parameter state: embedded `init/<name>` tensors, or the sibling file the header names
    (checked against its sha256, so a set never silently meets another run's weights)."""
    placement = meta.get("init_state", "none")
    if placement == "embedded":
        return {k[len(INIT_PREFIX):]: v for k, v in tensors.items() if k.startswith(INIT_PREFIX)}
    if placement == "none":
        return {}
    sibling = Path(path).parent / placement
    if not sibling.is_file():
        raise DataError(f"{path} keeps its initial weights in {placement} beside it, which is missing: "
                        f"copy {placement} together with the set")
    payload = sibling.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("init_sha256"):
        raise DataError(f"{sibling} is not the initial-weights file of {path} (sha256 differs): copy the pair together")
    from safetensors.torch import load

    return load(payload)


def precision_of(meta: Dict[str, str], device: torch.device) -> Precision:
    """The precision the run evaluated with (autocast of forward passes), on `device`."""
    name = json.loads(meta.get("protocol", "{}")).get("precision", "fp32")
    if name != "fp32" and device.type == "cpu" and name == "fp16":
        name = "fp32"  # fp16 autocast is a GPU setting
    return Precision(name, device)


def _hf_module(meta: Dict[str, str]) -> nn.Module:
    """The transformers model from its recorded config (attention eager, as distilled), random weights."""
    import transformers
    from transformers import AutoConfig

    config_dict = json.loads(meta["hf_config"])
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    cls = getattr(transformers, meta["hf_class"])
    return cls._from_config(config, attn_implementation="eager")


def _image_learner(meta: Dict[str, str], model: dict, data: torch.Tensor, targets: torch.Tensor, device) -> Learner:
    """The learner of an image model config, as the run built it (models.build_learner)."""
    from omegaconf import OmegaConf

    from dd_runner.models import build_learner

    config = json.loads(meta["config"])
    shape = SimpleNamespace(modality="image", task="classification", name=meta.get("dataset", ""),
                            example_shape=tuple(data.shape[2:]), num_classes=targets.shape[-1])
    return build_learner(OmegaConf.create(model), shape, device, precision_of(meta, device),
                         OmegaConf.create(config["distill"]))


def learner_for(module: nn.Module, meta: Dict[str, str], precision: Optional[Precision] = None) -> Learner:
    """The learner the run used, around `module` (which it trains in place through `load_into`)."""
    device = next(module.parameters()).device
    precision = precision or precision_of(meta, device)
    if meta.get("modality") != "text":
        from dd_runner.models.zoo.common import BatchNormLearner

        # as models/zoo/common.py build_image_learner: batch norm gets per-network running statistics
        batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        return (BatchNormLearner if batch_norm else Learner)(module, device, precision)
    from dd_runner.models.transformer import CausalLMLearner, TextClassifierLearner

    cls = CausalLMLearner if meta.get("task") == "language_modeling" else TextClassifierLearner
    pad = getattr(module.config, "pad_token_id", None) or 0
    return cls(module, device, precision, head=json.loads(meta.get("head", "[]")), pretrained=True,
               seq_len=int(meta.get("seq_len", 0) or 0), pad_id=pad)


def load_into(module: nn.Module, state: Dict[str, torch.Tensor]) -> nn.Module:
    """Copy a parameter state (all or some of the module's parameters) into `module` in place."""
    named = dict(module.named_parameters())
    unknown = [n for n in state if n not in named]
    if unknown:
        raise DataError(f"the set's network has parameters this model lacks ({', '.join(unknown[:3])}...): "
                        "use load_distilled(path).model() for the network it was distilled for")
    with torch.no_grad():
        for name, value in state.items():
            named[name].copy_(value.to(named[name].device, named[name].dtype))
    return module


def build_network(meta: Dict[str, str], state: Dict[str, torch.Tensor], data: torch.Tensor,
                  targets: torch.Tensor, seed: Optional[int], device) -> nn.Module:
    """The network the set was distilled for: at theta_0 for fixed / pretrained init; a draw of p(theta)
    with `seed` for random init (and for the redrawn parameters of pretrained init with init.resample)."""
    device = torch.device(device)
    config = json.loads(meta["config"])
    init = config["init"]
    fixed = init["mode"] == "fixed" or (init["mode"] == "pretrained" and not init.get("resample"))
    if not state and (fixed or meta.get("modality") == "text"):
        raise DataError("this file holds no initial weights (a snapshot keeps only the set): take the network from "
                        "the run's distilled.safetensors, load_distilled(...).model()")
    if meta.get("modality") == "text":
        module = load_into(_hf_module(meta), state).to(device)
        learner = learner_for(module, meta)
    else:
        learner = _image_learner(meta, json.loads(meta["config"])["model"], data, targets, device)
        load_into(learner.module, state)
    if not fixed:
        drawn = learner.draw(0 if seed is None else int(seed))
        if init["mode"] == "pretrained":  # init.resample: those parameters drawn, the rest as loaded
            drawn = tuple(d if n.startswith(tuple(init["resample"])) else b
                          for n, d, b in zip(learner.names, drawn, learner.params_from_state(state)))
        load_into(learner.module, learner.as_dict(drawn))
    return learner.module


def other_architecture(meta: Dict[str, str], option: str, model: dict, data: torch.Tensor, targets: torch.Tensor,
                       seed: int, device) -> nn.Module:
    """An eval.models architecture as the run evaluated it (eval/cross_arch.py): random weights drawn with
    `seed` whatever the set's init mode, tagged with `option` so `DistilledSet.train` uses its tuned lr."""
    learner = _image_learner(meta, model, data, targets, torch.device(device))
    load_into(learner.module, learner.as_dict(learner.draw(int(seed))))
    setattr(learner.module, ARCH_ATTRIBUTE, option)
    return learner.module

"""Public API for reusing a distilled set: `dd_runner.load_distilled(path)`.

    d = load_distilled("outputs/runs/.../distilled.safetensors")
    net = d.model()                          # the network it was distilled for, at its theta_0
    d.train(net)                             # the run's evaluation schedule (learned lrs, or its tuned lr)
    d.evaluate(net, d.test_data())["acc"]    # = metrics.json test/acc_mean for fixed init

Random init: `d.model(seed=s)` is a fresh draw of p(theta); the reported figure is a mean over such
draws, `d.metrics["test/acc_std"]` its spread. Everything needed is in the file (and, for a large network,
the `init.safetensors` beside it): see dd_runner/runtime/portable.py for what the header holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.core.errors import DataError
from dd_runner.data.bundle import Split
from dd_runner.models.learner import Step
from dd_runner.synthetic import reuse
from dd_runner.synthetic.set import fixed_steps, minibatch_steps

CORE = ("data", "targets", "lrs", "classes", "teacher_probs")


@dataclass
class DistilledSet:
    data: torch.Tensor  # (steps, examples per step, *example shape), in the model's input space
    targets: torch.Tensor  # (steps, examples per step, classes): the label distributions trained on
    lrs: torch.Tensor  # (steps * epochs,): the learned step size of each unrolled step
    classes: torch.Tensor  # (examples per step,): the class each slot was distilled for
    epochs: int
    metadata: Dict[str, str] = field(default_factory=dict)
    teacher_probs: Optional[torch.Tensor] = None  # labels=teacher: (steps, examples, classes) at temperature T
    extras: Dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. text: attention_labels, attention_weight
    initial_state: Dict[str, torch.Tensor] = field(default_factory=dict)  # theta_0's parameters (fixed / pretrained)

    # --- what the header says -------------------------------------------------------------------------
    def _json(self, key: str, default):
        return json.loads(self.metadata[key]) if key in self.metadata else default

    @property
    def normalisation(self) -> Dict[str, List[float]]:
        return self._json("normalisation", {})

    @property
    def config(self) -> dict:
        """The run's resolved config (dataset, model, init, labels, distill, eval, ...)."""
        return self._json("config", {})

    @property
    def protocol(self) -> dict:
        """How the reported figure was obtained: schedule, tuned lr (if any), nets, precision, seed."""
        return self._json("protocol", {"schedule": "distilled", "lr": None})

    @property
    def provenance(self) -> dict:
        return self._json("provenance", {})

    @property
    def metrics(self) -> Dict[str, float]:
        """The run's test (and validation) figures for this set."""
        return self._json("metrics", {})

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to the normalised space the set (and the network) live in."""
        n = self.normalisation
        if not n:
            return images
        shape = (-1,) + (1,) * (images.dim() - 2)
        return (images - torch.tensor(n["mean"]).view(shape)) / torch.tensor(n["std"]).view(shape)

    # --- the network, its training and its measurement ------------------------------------------------
    def model(self, seed: Optional[int] = None, device: Union[str, torch.device] = "cpu") -> nn.Module:
        """The network the set was distilled for: at theta_0 (fixed / pretrained init), or a fresh draw of
        p(theta) from `seed` (random init; default seed 0). Text: the transformers model with its head."""
        if "config" not in self.metadata:
            raise DataError("this distilled set predates self-contained files (format dd-runner/1): it holds no "
                            "model config or theta_0; build the network yourself and use train()")
        return reuse.build_network(self.metadata, self.initial_state, self.data, self.targets, seed, device)

    def steps(self) -> List[Step]:
        """The steps x epochs inner steps in training order, with the learned lrs."""
        return fixed_steps(self.data, self.targets, self.lrs, self.epochs)

    def _step_extras(self) -> Dict[str, torch.Tensor]:
        """Further inputs of the inner loss, laid out like `data` (scalars shared)."""
        out: Dict[str, torch.Tensor] = {}
        if self.teacher_probs is not None:
            out.update(teacher_probs=self.teacher_probs, kd_temperature=torch.tensor(float(self.metadata["temperature"])),
                       kd_alpha=torch.tensor(float(self.metadata["alpha"])))
        if "attention_labels" in self.extras:
            out.update(attention=self.extras["attention_labels"], attention_weight=self.extras["attention_weight"])
        return out

    def schedule(self, device: Union[str, torch.device] = "cpu") -> Tuple[List[Step], float, float]:
        """(steps, momentum, weight decay) of the run's evaluation protocol: the learned lrs in the
        distilled order, or minibatch SGD with the lr tuned on validation (eval.schedule=train)."""
        p = self.protocol
        data, targets = self.data.to(device), self.targets.to(device)
        extras = {k: v.to(device) for k, v in self._step_extras().items()}
        if p.get("schedule", "distilled") == "distilled":
            lrs = self.lrs if p.get("lr") is None else torch.full_like(self.lrs, float(p["lr"]))
            return fixed_steps(data, targets, lrs.to(device), self.epochs, extras=extras), 0.0, 0.0
        xs, ys = data.flatten(0, 1), targets.flatten(0, 1)
        flat = {k: v.flatten(0, 1) if v.dim() else v for k, v in extras.items()}
        steps = list(minibatch_steps(xs, ys, flat, float(p["lr"]), p["train_epochs"], p["train_batch"], p["seed"]))
        return steps, float(p["train_momentum"]), float(p["train_weight_decay"])

    def train(self, model: nn.Module, forward: Optional[Callable] = None) -> nn.Module:
        """Train `model` in place by the run's evaluation protocol (`schedule()`), with the code the run
        trained its networks with. `forward(model, x) -> logits` instead trains it by plain SGD with the
        learned lrs and the loss -(y * log_softmax(logits)).sum(-1).mean(), for any model and input path."""
        if forward is not None:
            return self._train_plain(model, forward)
        learner = reuse.learner_for(model, self.metadata)
        steps, momentum, weight_decay = self.schedule(learner.device)
        params = learner.params_from_state(dict(model.named_parameters()))
        trained = learner.train_on_steps(params, steps, momentum, weight_decay)
        return reuse.load_into(model, learner.as_dict(trained))

    def evaluate(self, model: nn.Module, data, batch_size: Optional[int] = None) -> Dict[str, float]:
        """Metrics of `model` on `data` (a Split from `test_data()`, or (inputs, labels) tensors in the
        model's input space): {"acc", "loss"} (language models also "ppl"), as the run measured them."""
        learner = reuse.learner_for(model, self.metadata)
        split = data if isinstance(data, Split) else Split(*data)
        params = learner.params_from_state(dict(model.named_parameters()))
        return learner.evaluate(params, split, batch_size or int(self.protocol.get("batch_size", 1024)))

    def test_data(self, root: Optional[str] = None) -> Split:
        """The run's test split (normalised images, or token ids with a mask), read as the run read it;
        `root`: where the dataset lives now, if not where the run found it."""
        from omegaconf import OmegaConf

        from dd_runner.data import load_data

        config = self.config
        if not config:
            raise DataError("this distilled set holds no dataset config (format dd-runner/1): load the data yourself")
        dataset = OmegaConf.create(config["dataset"])
        if root is not None:
            dataset.root = str(root)
        return load_data(dataset, OmegaConf.create(config["model"])).test

    def _train_plain(self, model: nn.Module, forward: Callable) -> nn.Module:
        from dd_runner.models.losses import kd_loss

        device = next(model.parameters()).device
        model.train()
        steps = len(self.data)
        for t, step in enumerate(self.steps()):
            logits = forward(model, step.x.to(device))
            if self.teacher_probs is not None:
                T, alpha = (torch.tensor(float(self.metadata[k])) for k in ("temperature", "alpha"))
                loss = kd_loss(logits, step.y.to(device), self.teacher_probs[t % steps].to(device), T, alpha)
            else:
                loss = -(step.y.to(device) * F.log_softmax(logits.float(), -1)).sum(-1).mean()
            model.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p.sub_(step.lr.to(device) * p.grad)
        return model


def load_distilled(path: Union[str, Path]) -> DistilledSet:
    """Read a `distilled.safetensors` (or a snapshot) written by dd-run; a missing, truncated or foreign
    file is a DataError with one line saying so."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: point load_distilled at a run's distilled.safetensors")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise DataError(f"{path} is not a readable safetensors file (truncated or another format: "
                        f"{str(e).splitlines()[0][:120]})") from None
    if not metadata.get("format", "").startswith("dd-runner/") or metadata["format"] in ("dd-runner/init", "dd-runner/model"):
        raise DataError(f"{path} is not a distilled set written by dd-runner (its header has no dd-runner set format tag)")
    missing = [k for k in CORE[:4] if k not in tensors]
    if missing or "epochs" not in metadata:
        raise DataError(f"{path} lacks {', '.join(missing) or 'epochs'}: not a complete dd-runner distilled set")
    return DistilledSet(data=tensors["data"], targets=tensors["targets"], lrs=tensors["lrs"],
                        classes=tensors["classes"], epochs=int(metadata["epochs"]), metadata=metadata,
                        teacher_probs=tensors.get("teacher_probs"),
                        extras={k: v for k, v in tensors.items() if k not in CORE and not k.startswith(reuse.INIT_PREFIX)},
                        initial_state=reuse.read_initial_state(path, metadata, tensors))

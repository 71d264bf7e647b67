"""Public API for reusing a distilled set: `dd_runner.load_distilled(path)`.

    d = load_distilled("outputs/runs/.../distilled.safetensors")
    net = d.model()                          # the network it was distilled for, at its theta_0
    d.train(net)                             # the run's evaluation protocol, replayed with the run's code
    d.evaluate(net, d.test_data())["acc"]    # = metrics.json test/acc_mean for fixed init

Random init: `d.model(net=i)` is the run's i-th evaluation network (the reported figure is the mean over
i < protocol["nets"], `d.metrics["test/acc_std"]` its spread); `d.model(seed=s)` any other draw of p(theta).
`d.model(arch="alexnet")` is an eval.models architecture, which `train()` then trains with its own tuned lr.
Everything needed is in the file (and, for a large network, the `init.safetensors` beside it): see
dd_runner/runtime/portable.py for what the header holds and header.py for how it is checked on loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.core.errors import DataError
from dd_runner.data.bundle import Split
from dd_runner.models.learner import Step
from dd_runner.reuse import network, replay
from dd_runner.reuse.header import check_header
from dd_runner.synthetic.set import fixed_steps

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
        """How the reported figure was obtained, all of it (`train()` replays it): schedule ("distilled":
        the set's steps x epochs with its learned lrs; "train": train_epochs epochs of minibatch SGD, batch
        train_batch, momentum, weight decay, lr /10 halfway), `lr` (the fixed lr used, tuned on validation
        over `lr_grid`; null: the learned lrs), `augment` (eval.augment: {"name": "none"} or DSA's strategy
        and parameters), `seed` (the minibatch order, the augmentation draws and the evaluation networks
        derive from it), `nets`, `batch_size`, `precision`, `labels`, `attention`, and `models`: each
        eval.models architecture's model config and tuned lr."""
        return self._json("protocol", {"schedule": "distilled", "lr": None})

    @property
    def provenance(self) -> dict:
        return self._json("provenance", {})

    @property
    def metrics(self) -> Dict[str, float]:
        """The run's test (and validation) figures for this set."""
        return self._json("metrics", {})

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to the normalised space the set (and the network) live in: (x - mean) / std, or
        the run's ZCA whitening (dataset.zca, read from the file's zca/ tensors)."""
        n = self.normalisation
        if not n:
            return images
        if n.get("zca"):
            from dd_runner.data import zca

            fitted = zca.from_tensors(self.extras)
            if not fitted:
                raise DataError("this set was ZCA-whitened but its file holds no zca/ tensors (a snapshot keeps none): "
                                "load the run's distilled.safetensors")
            return zca.whiten(images.float(), fitted)
        shape = (-1,) + (1,) * (images.dim() - 2)
        return (images - torch.tensor(n["mean"]).view(shape)) / torch.tensor(n["std"]).view(shape)

    # --- the network, its training and its measurement ------------------------------------------------
    def model(self, seed: Optional[int] = None, device: Union[str, torch.device] = "cpu", *,
              net: Optional[int] = None, arch: Optional[str] = None) -> nn.Module:
        """A network to train on the set.

        - Fixed / pretrained init: the network it was distilled for, at theta_0 (`seed` and `net` are
          ignored; pretrained with init.resample redraws those parameters from them).
        - Random init: `net=i` is the run's i-th evaluation network, exactly (the figure is the mean over
          i < protocol["nets"]); `seed=s` any other draw of p(theta); neither: net 0.
        - `arch`: an eval.models architecture (`list(protocol["models"])`), drawn at random as the run drew
          it (`net`, `seed` as above); `train()` knows it from the module and uses that column's tuned lr.
        Text sets: the transformers model with its head, built from the header (no hub needed)."""
        if "config" not in self.metadata:
            raise DataError("this distilled set predates self-contained files (format dd-runner/1): it holds no "
                            "model config or theta_0; build the network yourself and use train()")
        if seed is None:
            seed = replay.evaluation_seed(self.protocol, net or 0)
        elif net is not None:
            raise ValueError("model(): give seed or net, not both")
        option = self._arch(arch)
        if option is not None:
            spec = self.protocol["models"][option]["model"]
            return network.other_architecture(self.metadata, option, spec, self.data, self.targets, seed, device)
        return network.build_network(self.metadata, self.initial_state, self.data, self.targets, seed, device)

    def steps(self) -> List[Step]:
        """The steps x epochs inner steps in training order, with the learned lrs (for your own loop)."""
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

    def evaluation_lr(self, arch: Optional[str] = None) -> Optional[float]:
        """The fixed lr the run's evaluation trained with (tuned on validation, or eval.lr_grid's one value),
        for the distillation architecture or an eval.models `arch`; None where it used the learned lrs."""
        return replay.fixed_lr(self.protocol, self.lrs, self._arch(arch))

    def schedule(self, device: Union[str, torch.device] = "cpu", arch: Optional[str] = None):
        """(steps, momentum, weight decay) of the run's evaluation, built by the code the run used: the
        learned lrs in the distilled order, or minibatch SGD with the tuned lr, /10 halfway, the run's
        minibatch order and, with eval.augment=dsa, the same augmentation draws; teacher probabilities and
        attention labels as the run trained with. `steps` is eval/protocol.py's Schedule: iterate it afresh
        for every network."""
        extras = {k: v.to(device) for k, v in self._step_extras().items()}
        steps = replay.build_schedule(self.protocol, self.config, self.data.to(device), self.targets.to(device),
                                      self.lrs.to(device), self.epochs, extras, self._arch(arch))
        return steps, steps.momentum, steps.weight_decay

    def train(self, model: nn.Module, forward: Optional[Callable] = None, arch: Optional[str] = None) -> nn.Module:
        """Train `model` in place by the run's evaluation protocol (`schedule()`), with the code the run
        trained its networks with; returns it. A network from `model(arch=...)` is trained as that eval.models
        column was (its tuned lr); `arch` says so for a network built otherwise. `forward(model, x) -> logits`
        instead trains any model by plain SGD with the learned lrs and the loss
        -(y * log_softmax(logits)).sum(-1).mean() (no augmentation, momentum or tuned lr)."""
        if forward is not None:
            return self._train_plain(model, forward)
        learner = network.learner_for(model, self.metadata)
        steps, momentum, weight_decay = self.schedule(learner.device, arch or getattr(model, network.ARCH_ATTRIBUTE, None))
        params = learner.params_from_state(dict(model.named_parameters()))
        trained = learner.train_on_steps(params, steps, momentum, weight_decay)
        return network.load_into(model, learner.as_dict(trained))

    def _arch(self, arch: Optional[str]) -> Optional[str]:
        """None for the distillation architecture, else an eval.models one the header knows."""
        if arch is None or arch == self.config.get("model", {}).get("name"):
            return None
        if arch not in self.protocol.get("models", {}):
            raise DataError(f"arch={arch!r} is not one of this set's eval.models architectures "
                            f"({', '.join(self.protocol.get('models', {})) or 'none'})")
        return arch

    def evaluate(self, model: nn.Module, data, batch_size: Optional[int] = None) -> Dict[str, float]:
        """Metrics of `model` on `data` (a Split from `test_data()`, or (inputs, labels) tensors in the
        model's input space): {"acc", "loss"} (language models also "ppl"), as the run measured them."""
        learner = network.learner_for(model, self.metadata)
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

    def to_dc(self) -> Dict[str, object]:
        """The set in the form of Zhao et al.'s DatasetCondensation code (utils.py `evaluate_synset`):
        `image_syn` (N, C, H, W) float32 over all steps, `label_syn` (N,) int64 class ids, `args` (dsa,
        dsa_strategy, dsa_param, dc_aug_param, epoch_eval_train, lr_net, batch_train, ...), the dataset's
        channel / im_size / num_classes / class_names / mean / std, `data` = [[image_syn, label_syn]] as
        DC's own result files hold them, and `notes`: what DC's evaluator does differently (dc_format.py)."""
        from dd_runner.reuse.dc_format import dc_payload

        return dc_payload(self)

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
    """Read a `distilled.safetensors` (or a snapshot, snapshots/<iteration>.safetensors) written by dd-run.
    The header is checked here (header.py): a missing, truncated, foreign or altered file is a DataError
    with one line naming the file and, for an altered header, the field."""
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
    check_header(path, metadata, tensors)
    data, epochs = tensors["data"], int(metadata["epochs"])
    return DistilledSet(data=data, targets=tensors["targets"], lrs=tensors["lrs"].expand(data.shape[0] * epochs),
                        classes=tensors["classes"], epochs=epochs, metadata=metadata,
                        teacher_probs=tensors.get("teacher_probs"),
                        extras={k: v for k, v in tensors.items() if k not in CORE and not k.startswith(network.INIT_PREFIX)},
                        initial_state=network.read_initial_state(path, metadata, tensors))

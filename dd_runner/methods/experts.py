"""Expert trajectories for trajectory matching: `dd-run mode=experts` and the reader.

Each expert is a network trained from its own random initialisation on the full training split with SGD;
its parameters at the start and after every epoch go into `<run dir>/experts/expert_<i>.safetensors`,
tensor `epoch_<e>/<parameter name>`, with the model, dataset and seed in the header.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import torch

from dd_runner.core.errors import ConfigError, DataError
from dd_runner.core.files import read_safetensors, safetensors_shapes, save_tensors
from dd_runner.core.seeding import derive_seed
from dd_runner.models.inits import check_weights
from dd_runner.models.learner import Learner, Params

log = logging.getLogger(__name__)


def expert_key(epoch: int, name: str) -> str:
    return f"epoch_{epoch:03d}/{name}"


def epoch_of(key: str) -> int:
    """The epoch of an expert tensor's key ('epoch_007/conv1.weight' -> 7), -1 for any other key."""
    head = key.split("/")[0]
    digits = head[len("epoch_"):]
    return int(digits) if head.startswith("epoch_") and digits.isdigit() else -1


def train_experts(ctx) -> Dict[str, float]:
    from dd_runner.eval.full_data import train_full

    cfg, e = ctx.cfg, ctx.cfg.experts
    folder = ctx.out / "experts"
    schedule = SimpleNamespace(optimizer="sgd", lr=e.lr, momentum=e.momentum, weight_decay=0.0,
                               epochs=e.epochs, batch_size=e.batch_size)
    accs = []
    for i in range(e.count):
        theta0 = ctx.learner.draw(derive_seed(cfg.seed, "expert", i))
        trajectory = {expert_key(0, n): p for n, p in zip(ctx.learner.names, theta0)}

        def keep(epoch: int, params: Params) -> None:
            trajectory.update({expert_key(epoch, n): p.detach().clone() for n, p in zip(ctx.learner.names, params)})

        _, result = train_full(ctx.learner, theta0, ctx.data, schedule, cfg.seed, cfg.eval.batch_size,
                               net=i, on_epoch=keep, select_best=False)
        save_tensors(folder / f"expert_{i:03d}.safetensors", trajectory, {
            "format": "dd-runner/expert", "model": cfg.model.name, "dataset": cfg.dataset.name,
            "epochs": str(e.epochs), "lr": str(e.lr), "seed": str(cfg.seed), "expert": str(i)})
        accs.append(result["test/acc"])
        log.info("expert %d/%d: test accuracy %.4f after %d epochs", i + 1, e.count, accs[-1], e.epochs)
    log.info("experts in %s: use method=trajectory_matching method.experts=%s", folder, folder)
    return {"experts/count": e.count, "experts/epochs": e.epochs, "experts/test_acc_mean": sum(accs) / len(accs)}


class ExpertPool:
    """The trajectories of a mode=experts directory, checked against the model; loaded on first use."""

    def __init__(self, folder: str, learner: Learner, needed_epoch: int):
        self.files: List[Path] = sorted(Path(folder).glob("expert_*.safetensors")) if folder else []
        if not self.files:
            raise ConfigError(f"method.experts={folder} holds no expert_*.safetensors: write them with "
                              "`dd-run mode=experts` (same dataset and model) and point method.experts at its experts/ folder")
        self.learner = learner
        self._cache: Dict[int, Dict[str, torch.Tensor]] = {}
        # Every file's names and shapes from its header now (cheap), so that a foreign or truncated expert
        # stops the run before it starts; the values are checked (finite) when a file is first used.
        shapes = [safetensors_shapes(path, setting="method.experts") for path in self.files]
        for path, found in zip(self.files, shapes):
            self._check(path, {k: torch.empty(shape, device="meta") for k, shape in found.items()})
        epochs = min(max((epoch_of(k) for k in found), default=-1) for found in shapes)
        if epochs < needed_epoch:
            raise ConfigError(f"the experts in {folder} have {epochs} epochs; method.max_start_epoch + "
                              f"method.expert_epochs needs {needed_epoch}: lower them or train longer experts")

    def _check(self, path: Path, tensors: Dict[str, torch.Tensor]) -> None:
        epochs = sorted({key.split("/")[0] for key in tensors if epoch_of(key) >= 0})
        remedy = "experts must be trained by `dd-run mode=experts` with the same model and dataset settings"
        numbers = [epoch_of(e + "/") for e in epochs]
        if numbers != list(range(len(numbers))):
            gaps = sorted(set(range(max(numbers, default=0) + 1)) - set(numbers))
            raise DataError(f"method.experts={path} lacks the parameters of epochs {gaps[:5]}: it is not a whole "
                            f"trajectory; {remedy}")
        for epoch in epochs or ["epoch_000"]:
            check_weights({n: tensors.get(f"{epoch}/{n}") for n in self.learner.names}, self.learner,
                          f"method.experts={path} ({epoch})", remedy)

    def _load(self, i: int) -> Dict[str, torch.Tensor]:
        if i not in self._cache:
            tensors = read_safetensors(self.files[i], setting="method.experts")[0]
            self._check(self.files[i], tensors)
            self._cache[i] = tensors
        return self._cache[i]

    def __len__(self) -> int:
        return len(self.files)

    def params(self, expert: int, epoch: int) -> Params:
        tensors = self._load(expert)
        return self.learner.params_from_state({n: tensors[expert_key(epoch, n)] for n in self.learner.names})

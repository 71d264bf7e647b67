"""A network seen as a function of an explicit parameter tuple — the thing the inner loop trains.

Dataset distillation differentiates through training, so parameters are not module state but values:
`torch.func.functional_call(module, {name: tensor}, ...)` runs the module with the parameters of the
current inner step. Subclasses adapt one family of models (image classifiers, transformers) by saying how
synthetic and real inputs enter the network and how p(theta) is sampled; the losses depend on the task.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dd_runner.core.device import Precision, to_device
from dd_runner.data.bundle import Split
from dd_runner.models.losses import kd_loss, soft_cross_entropy, upcast
from dd_runner.models.sgd import sgd_apply, sgd_update  # noqa: F401  (sgd_update: the evaluation's update)

Params = Tuple[torch.Tensor, ...]


@dataclass
class Step:
    """One inner gradient step: a batch of synthetic inputs, their targets and the step size."""

    x: torch.Tensor
    y: torch.Tensor  # classification: target distributions (n, classes)
    lr: torch.Tensor  # scalar
    extras: Dict[str, torch.Tensor] = field(default_factory=dict)

    def detached(self) -> "Step":
        return Step(self.x.detach(), self.y.detach(), self.lr.detach(),
                    {k: v.detach() for k, v in self.extras.items()})


def draw_weights(module: nn.Module, scheme: str, seed: int) -> nn.Module:
    """Re-initialise `module` in place from p(theta) with an explicit seed (device independent: runs on CPU)."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for m in module.modules():
            if scheme == "default" or not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                if hasattr(m, "reset_parameters") and next(m.parameters(recurse=False), None) is not None:
                    m.reset_parameters()
                continue
            if scheme == "xavier":
                nn.init.xavier_normal_(m.weight, generator=gen)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
            else:
                raise ValueError(f"unknown weight_init '{scheme}'")
            if m.bias is not None:
                m.bias.zero_()
    return module


class Learner:
    """Classification learner for modules that map an input tensor to logits."""

    task = "classification"
    # Whether evaluating many nets together under vmap beats a loop on a CPU. True for small layers (LeNet:
    # 1.3x faster, scripts/bench.py eval); wide convolutions become grouped convolutions under vmap, which
    # CPU kernels run slower than one net at a time (ConvNet-3: 2.5x slower), so their learners say False.
    # On CUDA evaluation always batches.
    vmap_pays_on_cpu = True
    compile_eval = False  # eval.compile: the test passes of evaluation run torch.compile'd (compile_evaluation)

    def __init__(self, module: nn.Module, device: torch.device, precision: Precision,
                 weight_init: str = "default", trainable: Optional[Sequence[str]] = None):
        self.device = device
        self.precision = precision
        self.weight_init = weight_init
        self.cpu_template = copy.deepcopy(module).cpu()  # draws of p(theta) happen here, then move
        self.module = module.to(device)
        named = dict(self.module.named_parameters())
        self.names = list(trainable) if trainable is not None else list(named)
        self.dtype = next(iter(named.values())).dtype

    # --- how inputs enter the network (override per model family) -------------------------------
    def forward_synthetic(self, params: Dict[str, torch.Tensor], step: Step) -> torch.Tensor:
        return functional_call(self.module, params, (step.x,))

    def forward_real(self, params: Dict[str, torch.Tensor], batch: Split) -> torch.Tensor:
        return functional_call(self.module, params, (batch.inputs,))

    def synthetic_features(self, params: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of synthetic inputs (distribution matching): modules take return_features."""
        return functional_call(self.module, params, (x,), {"return_features": True})

    def real_features(self, params: Dict[str, torch.Tensor], batch: Split) -> torch.Tensor:
        """Penultimate features of real inputs (distribution matching, herding / k-center coresets)."""
        return functional_call(self.module, params, (batch.inputs,), {"return_features": True})

    def to_synthetic_space(self, batch: Split) -> torch.Tensor:
        """Real examples as synthetic inputs (init_from=real, real-example baselines)."""
        return batch.inputs

    def synthetic_shape(self, data, distill_cfg) -> tuple:
        """Shape of one synthetic example: an image for image classifiers."""
        return tuple(data.example_shape)

    def noise(self, shape, gen: torch.Generator) -> torch.Tensor:
        """Initial synthetic data for init_from=noise: N(0, 1) in the normalised input space."""
        return torch.randn(shape, generator=gen)

    def draw(self, seed: int) -> Params:
        """theta_0 ~ p(theta), deterministic in `seed`."""
        template = draw_weights(self.cpu_template, self.weight_init, seed)
        return self.params_from_state(dict(template.named_parameters()))

    def pretrained_params(self) -> Optional[Params]:
        """theta_0 of init=pretrained without a checkpoint, where the model brings its own (transformers)."""
        return None

    # --- the functional view ----------------------------------------------------------------------
    def params_from_state(self, state: Dict[str, torch.Tensor]) -> Params:
        # a fresh copy on the device, from the host through pinned memory (no wait for the GPU)
        return tuple(to_device(state[n].detach().to(dtype=self.dtype, copy=True), self.device) for n in self.names)

    def as_dict(self, params: Params) -> Dict[str, torch.Tensor]:
        return dict(zip(self.names, params))

    def inner_loss(self, params: Params, step: Step) -> torch.Tensor:
        """Loss on synthetic data, network in train mode (Algorithm 1, line 6)."""
        self.module.train()
        with self.precision.autocast():
            logits = self.forward_synthetic(self.as_dict(params), step)
        if "teacher_probs" in step.extras:  # labels=teacher: knowledge distillation from a teacher network
            e = step.extras
            return kd_loss(logits, step.y, e["teacher_probs"], e["kd_temperature"], e["kd_alpha"])
        return soft_cross_entropy(logits, step.y)

    def real_loss(self, params: Params, batch: Split, train_mode: bool = False) -> torch.Tensor:
        """Loss on real data; eval mode for the outer objective (Algorithm 1, line 7), train mode for
        ordinary training."""
        self.module.train(train_mode)
        with self.precision.autocast():
            logits = self.forward_real(self.as_dict(params), batch)
        return F.cross_entropy(upcast(logits), batch.labels)

    def real_loss_weight(self, batch: Split) -> float:
        """What `real_loss` averages over in `batch` (examples here; a language model: its tokens). Real
        losses of micro-batches (distill.real_chunk) are combined with these weights."""
        return float(len(batch))

    def sgd_step(self, params: Params, step: Step, create_graph: bool) -> Params:
        """theta_{t+1} = theta_t - lr_t * grad l(x_t, theta_t); with create_graph the step stays differentiable."""
        loss = self.inner_loss(params, step)
        grads = torch.autograd.grad(loss, params, create_graph=create_graph)
        return sgd_apply(params, grads, step.lr)  # multi-tensor operations, not a few per parameter

    def train_on_steps(self, params: Params, steps: Sequence[Step], momentum: float = 0.0,
                       weight_decay: float = 0.0) -> Params:
        """Train a network on a step sequence without a meta-graph (evaluation). With momentum or weight
        decay this is torch.optim.SGD's update with each step's lr (the train evaluation schedule)."""
        buffers = None
        for step in steps:
            step = step.detached()
            params = tuple(p.detach().requires_grad_() for p in params)
            grads = torch.autograd.grad(self.inner_loss(params, step), params)
            with torch.no_grad():  # else weight decay links each momentum buffer to that step's parameters:
                # a graph through every step, holding every step's weights (ResNet-18: 45 MB a step)
                params, buffers = sgd_update(params, grads, step.lr, buffers, momentum, weight_decay)
        return tuple(p.detach() for p in params)

    def compile_evaluation(self) -> None:
        """eval.compile=true: the test passes of evaluation (forward only, no graph) run torch.compile'd, one
        net at a time and under vmap. Only these: compiled inner steps or real losses would silently give
        first-order meta-gradients (torch.compile does not keep the graph a double backward needs)."""
        self.compile_eval = True
        self._compiled_stats = torch.compile(self.split_stats)

    def split_stats(self, params: Params, inputs, labels, mask) -> Dict[str, torch.Tensor]:
        """batch_stats on the tensors of a batch (what a compiled function takes best)."""
        return self.batch_stats(params, Split(inputs, labels, mask))

    def test_pass(self, params: Params, batch: Split) -> Dict[str, torch.Tensor]:
        if not self.compile_eval:
            return self.batch_stats(params, batch)
        self.module.eval()
        return self._compiled_stats(params, batch.inputs, batch.labels, batch.mask)

    @torch.no_grad()
    def evaluate(self, params: Params, split: Split, batch_size: int) -> Dict[str, float]:
        """Accuracy and mean loss of one network on a split."""
        totals: Dict[str, torch.Tensor] = {}
        for batch in split.batches(batch_size):
            for key, value in self.test_pass(params, batch.to(self.device)).items():
                totals[key] = totals[key] + value if key in totals else value
        return self.metrics_from(totals, split)

    def batch_stats(self, params: Params, batch: Split) -> Dict[str, torch.Tensor]:
        """Summed evaluation statistics of one batch, as tensors: no `.item()`, so it runs under vmap
        (batched evaluation) and the loop syncs with the device once per split, not once per batch."""
        self.module.eval()
        with self.precision.autocast():
            logits = upcast(self.forward_real(self.as_dict(params), batch))
        return {"correct": (logits.argmax(-1) == batch.labels).sum(),
                "loss": F.cross_entropy(logits, batch.labels, reduction="sum")}

    def metrics_from(self, totals: Dict[str, torch.Tensor], split: Split) -> Dict[str, float]:
        """The metrics of one network from its summed `batch_stats` over `split`."""
        return {"acc": totals["correct"].item() / len(split), "loss": totals["loss"].item() / len(split)}

    # --- batching several networks under torch.func.vmap (models/stacked.py) ----------------------
    def vmap_blocker(self) -> Optional[str]:
        """Why this network cannot be trained under vmap, or None when it can (engine=vmap, batched
        evaluation). Active dropout would need randomness="different" (slow, and its masks would not
        match the loop's); batch norm updates running statistics in place. Subclasses whose forward
        has other vmap-unsafe parts (data-dependent control flow, in-place buffers) override this."""
        for name, m in self.module.named_modules():
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
                return f"it has active dropout ({name}, p={m.p}; set model.dropout=0)"
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                return f"batch norm ({name}) updates running statistics in place"
        return None

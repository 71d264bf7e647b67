"""The distilled set: synthetic inputs per step, one learned step size per unrolled step, and labels.

Layout (Wang et al. 2018, section 3.4): `data[s]` is the batch of step s (classes * ipc examples, class
order [0]*ipc + [1]*ipc + ...). Training runs `epochs` passes over the `steps` batches; the lrs are not
tied across epochs, so unrolled step t uses data[t % steps] and lr[t]. Step sizes are stored raw as
log(expm1(lr)) and used as softplus(raw), which keeps them positive.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dd_runner.core.errors import unknown
from dd_runner.models.learner import Step
from dd_runner.synthetic.teacher import make_teacher

LABEL_TYPES = ("hard", "soft", "unrestricted", "teacher")


def inverse_softplus(value: float) -> float:
    """log(expm1(v)), written so that large step sizes do not overflow."""
    return value + math.log(-math.expm1(-value))


class SyntheticSet(nn.Module):
    def __init__(self, steps: int, epochs: int, num_classes: int, ipc: int, example_shape: Sequence[int],
                 label_type: str = "hard", init_lr: float = 0.02, learn_lr: bool = True,
                 label_init_scale: float = 1.0, shared_lr: bool = False, teacher=None,
                 initial_targets: Optional[torch.Tensor] = None):
        """initial_targets (steps, examples, ..., K): one-hot targets other than the slot's class (language
        modelling: the next token at every position); default one_hot(class of the slot)."""
        super().__init__()
        if label_type not in LABEL_TYPES:
            raise unknown("label type", label_type, LABEL_TYPES)
        self.steps, self.epochs, self.ipc = steps, epochs, ipc
        self.num_classes, self.label_type = num_classes, label_type
        per_step = num_classes * ipc
        self.data = nn.Parameter(torch.randn(steps, per_step, *example_shape))
        # shared_lr: one step size for all steps (trajectory matching), else one per unrolled step
        self.raw_lrs = nn.Parameter(torch.full((1 if shared_lr else steps * epochs,), inverse_softplus(init_lr)),
                                    requires_grad=learn_lr)
        self.teacher = teacher  # labels=teacher: a Teacher giving soft targets for any inputs
        self.register_buffer("classes", torch.arange(num_classes).repeat_interleave(ipc))
        one_hot = (F.one_hot(self.classes, num_classes).float().expand(steps, -1, -1).clone()
                   if initial_targets is None else initial_targets.float())
        if label_type in ("hard", "teacher"):  # teacher: hard labels plus the teacher's soft targets
            self.register_buffer("labels", one_hot)
        else:  # soft: logits through softmax; unrestricted: the vectors themselves
            self.labels = nn.Parameter(one_hot * label_init_scale)

    @property
    def num_steps(self) -> int:
        """Unrolled inner steps: steps x epochs."""
        return self.steps * self.epochs

    @property
    def examples_per_step(self) -> int:
        return self.data.shape[1]

    def lrs(self) -> torch.Tensor:
        """The step size of every unrolled step (steps x epochs)."""
        return F.softplus(self.raw_lrs).expand(self.num_steps)

    def targets(self, s: int) -> torch.Tensor:
        """Target distributions of step batch s, as the inner loss sees them."""
        return self.labels[s].softmax(-1) if self.label_type == "soft" else self.labels[s]

    def step(self, t: int) -> Step:
        s = t % self.steps
        lr = F.softplus(self.raw_lrs[t if len(self.raw_lrs) > 1 else 0])
        return with_teacher(Step(x=self.data[s], y=self.targets(s), lr=lr, extras=self.extras(s)), self.teacher)

    def extras(self, s: int) -> Dict[str, torch.Tensor]:
        """Further inputs of step batch s's inner loss (subclasses: attention labels)."""
        return {}

    def all_extras(self) -> Dict[str, torch.Tensor]:
        """extras of every step batch, stacked like `data` (scalars as they are), detached."""
        per_step = [self.extras(s) for s in range(self.steps)]
        return {k: torch.stack([e[k] for e in per_step]).detach() if per_step[0][k].dim() else per_step[0][k].detach()
                for k in per_step[0]}

    def artefact_tensors(self) -> Dict[str, torch.Tensor]:
        """Tensors saved beside data / targets / lrs / classes (subclasses: attention labels)."""
        return {}

    def unrolled(self) -> List[Step]:
        """All steps x epochs inner steps, in training order, differentiable w.r.t. the leaves."""
        return [self.step(t) for t in range(self.num_steps)]

    def learnable(self) -> List[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def class_examples(self, c: int):
        """All synthetic examples of class c across steps, with their targets: (x, y)."""
        slots = torch.nonzero(self.classes == c).flatten()
        targets = self.all_targets()[:, slots]
        return self.data[:, slots].flatten(0, 1), targets.flatten(0, 1)

    def class_examples_all(self):
        """Every synthetic example with its target, flattened across steps: (x, y)."""
        return self.data.flatten(0, 1), self.all_targets().flatten(0, 1)

    def all_targets(self) -> torch.Tensor:
        return torch.stack([self.targets(s) for s in range(self.steps)])


@torch.no_grad()
def init_from_real(synth: SyntheticSet, real, learner, generator: torch.Generator) -> None:
    """Initialise every synthetic example with a distinct real example of its class (only the examples
    picked are converted to the synthetic space)."""
    for c in range(synth.num_classes):
        pool = torch.nonzero(real.labels == c).flatten()
        need = synth.steps * synth.ipc
        if len(pool) < need:
            raise ValueError(f"class {c} has {len(pool)} training examples, init_from=real needs {need}")
        pick = pool[torch.randperm(len(pool), generator=generator)[:need]]
        x = learner.to_synthetic_space(real.select(pick).to(learner.device)).cpu()
        slots = torch.nonzero(synth.classes == c).flatten()
        synth.data[:, slots] = x.view(synth.steps, synth.ipc, *x.shape[1:]).to(synth.data)


def synthetic_options(cfg, learner) -> Dict:
    """SyntheticSet keyword arguments every task shares (labels, step sizes, teacher)."""
    d = cfg.distill
    return dict(label_type=cfg.labels.type, init_lr=d.init_lr, learn_lr=d.learn_lr,
                label_init_scale=cfg.labels.init_scale, shared_lr=d.shared_lr, teacher=make_teacher(cfg.labels, learner))


@torch.no_grad()
def initialise_data(synth: SyntheticSet, init_from: str, data, learner, seed: int) -> None:
    """distill.init_from: real examples of each slot's class, or the learner's noise."""
    from dd_runner.core.seeding import generator

    gen = generator(seed, "synthetic-init")
    if init_from == "real":
        init_from_real(synth, data.train, learner, gen)
    else:
        synth.data.copy_(learner.noise(tuple(synth.data.shape), gen))


def with_teacher(step: Step, teacher) -> Step:
    """Attach a teacher's soft targets for the step's inputs (labels=teacher); identity without one."""
    if teacher is None:
        return step
    return Step(step.x, step.y, step.lr, {**step.extras, **teacher.extras(step.x)})


def fixed_steps(data: torch.Tensor, targets: torch.Tensor, lrs: torch.Tensor, epochs: int, teacher=None,
                extras: Optional[Dict[str, torch.Tensor]] = None) -> List[Step]:
    """A step sequence from fixed tensors (baselines, a loaded distilled set): data (steps, n, ...);
    `extras` laid out like data (steps, ...) or scalars shared by every step."""
    steps, extras = data.shape[0], extras or {}
    return [with_teacher(Step(x=data[t % steps], y=targets[t % steps], lr=lrs[t],
                              extras={k: v[t % steps] if v.dim() else v for k, v in extras.items()}), teacher)
            for t in range(steps * epochs)]


def minibatch_steps(xs: torch.Tensor, ys: torch.Tensor, extras: Dict[str, torch.Tensor], lr: float, epochs: int,
                    batch: int, seed: int, augment: Optional[Callable] = None) -> Iterator[Step]:
    """eval.schedule=train over a flattened set: `epochs` shuffled passes of `batch` examples, lr divided
    by 10 from halfway; the order comes from `seed` alone, so every network (and a loaded set) sees the same.
    `augment(x, seed)` (eval.augment) transforms each minibatch, with draws that depend on `seed` alone too."""
    from dd_runner.core.seeding import derive_seed, generator

    gen = generator(seed, "eval-train-schedule")
    for epoch in range(epochs):
        decay = 0.1 if epoch >= epochs // 2 else 1.0
        step_lr = torch.tensor(lr * decay, device=xs.device, dtype=xs.dtype)
        order = torch.randperm(len(xs), generator=gen).to(xs.device)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x = xs[idx] if augment is None else augment(xs[idx], derive_seed(seed, "eval-augment", epoch, start))
            yield Step(x, ys[idx], step_lr, {k: v[idx] if v.dim() else v for k, v in extras.items()})

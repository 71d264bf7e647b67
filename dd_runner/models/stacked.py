"""Several networks of one Learner trained as one: parameters stacked along a leading dimension, every
inner step run for all of them at once under `torch.func.vmap`.

`StackedNets` offers the part of the Learner interface the engines and the evaluation use (`sgd_step`,
`real_loss`, `real_loss_weight`, `train_on_steps`, `device`) on stacked parameter tuples, so the
`unroll` and `recompute` engines run unchanged on a stack (`engine=vmap`, `engine=vmap_recompute`) and
evaluation trains `eval.nets` networks per call instead of one. Losses are summed over the nets.

Inside vmap the inner gradient is `torch.func.grad` (autograd.grad cannot run there); its result stays
differentiable by ordinary autograd outside, w.r.t. the synthetic data, lrs and labels of the step, so
the meta-gradient is the same as unrolling the nets one by one (tests check this in float64). The update
itself runs outside vmap, on the stacked tensors, as the multi-tensor operations of one net
(models/sgd.py: no `_foreach_*` operation has a batching rule).
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence

import torch
from torch.func import grad, vmap

from dd_runner.core.errors import ConfigError
from dd_runner.data.bundle import Split
from dd_runner.models.learner import Learner, Params, Step
from dd_runner.models.sgd import sgd_apply, sgd_update


def stack(thetas: Sequence[Params]) -> Params:
    """[(w1, b1), (w2, b2), ...] -> (stack(w), stack(b)): one tensor per parameter, nets first."""
    return tuple(torch.stack(ps) for ps in zip(*thetas))


def unstack(stacked: Params) -> List[Params]:
    """The inverse of `stack`: one parameter tuple per net (views, differentiable)."""
    return [tuple(p[i] for p in stacked) for i in range(stacked[0].shape[0])]


def groups(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive groups of at most `size` items (size <= 0: one group)."""
    size = size if size > 0 else max(1, len(items))
    for start in range(0, len(items), size):
        yield items[start:start + size]


def require_vmap(learner: Learner, setting: str) -> None:
    """A ConfigError naming `setting` when this learner's network cannot be batched under vmap."""
    reason = learner.vmap_blocker()
    if reason:
        raise ConfigError(f"{setting} cannot batch this model: {reason}; use distill.engine=unroll or recompute")


class StackedNets:
    def __init__(self, learner: Learner, batch_real_loss: Optional[bool] = None):
        self.learner = learner
        self.device = learner.device
        # One batched real-loss call on a GPU; net by net on a CPU, where the batched activations (nets x
        # real batch) overflow the caches: 1.8x slower than one net at a time (LeNet, 8 nets, 1024 real
        # images), while the inner steps, on a few synthetic examples each, still gain from batching.
        self.batch_real_loss = self.device.type != "cpu" if batch_real_loss is None else batch_real_loss
        self._stats = torch.compile(self._vmapped_stats) if learner.compile_eval else self._vmapped_stats

    def _vmapped_stats(self, params: Params, inputs, labels, mask) -> Dict[str, torch.Tensor]:
        return vmap(self.learner.split_stats, in_dims=(0, None, None, None))(params, inputs, labels, mask)

    def _grads(self, params: Params, step: Step) -> Params:
        return vmap(grad(self.learner.inner_loss), in_dims=(0, None))(params, step)

    def sgd_step(self, params: Params, step: Step, create_graph: bool = True) -> Params:
        """One inner step of every net. Differentiable whenever its inputs are (create_graph is implied:
        torch.func.grad keeps the graph of its result for the autograd outside it)."""
        return sgd_apply(params, self._grads(params, step), step.lr)

    def real_loss(self, params: Params, batch: Split, train_mode: bool = False) -> torch.Tensor:
        """The real-data loss of every net, summed."""
        if self.batch_real_loss:
            return vmap(lambda p: self.learner.real_loss(p, batch, train_mode))(params).sum()
        return sum(self.learner.real_loss(net, batch, train_mode) for net in unstack(params))

    def real_loss_weight(self, batch: Split) -> float:
        return self.learner.real_loss_weight(batch)

    def train_on_steps(self, params: Params, steps: Sequence[Step], momentum: float = 0.0,
                       weight_decay: float = 0.0) -> Params:
        """Train every net on a step sequence without a meta-graph (evaluation, recompute's forward);
        momentum and weight decay as in Learner.train_on_steps (the buffers are stacked too)."""
        params, buffers = tuple(p.detach() for p in params), None
        with torch.no_grad():  # torch.func.grad ignores it; it keeps the updates themselves graph-free
            for step in steps:
                step = step.detached()
                if not momentum and not weight_decay:
                    params = self.sgd_step(params, step)
                    continue
                params, buffers = sgd_update(params, self._grads(params, step), step.lr, buffers, momentum,
                                             weight_decay)
        return params

    @torch.no_grad()
    def evaluate(self, params: Params, split: Split, batch_size: int) -> List[Dict[str, float]]:
        """The Learner's metrics of every net on a split. `batch_size` bounds the examples in one
        forward pass over all nets (as in the loop, where a pass holds one net's batch)."""
        nets = params[0].shape[0]
        per_net = max(1, batch_size // nets)
        totals: Dict[str, torch.Tensor] = {}
        for batch in split.batches(per_net):
            batch = batch.to(self.device)
            self.learner.module.eval()
            stats = self._stats(params, batch.inputs, batch.labels, batch.mask)
            for key, value in stats.items():
                totals[key] = totals[key] + value if key in totals else value
        return [self.learner.metrics_from({k: v[i] for k, v in totals.items()}, split) for i in range(nets)]

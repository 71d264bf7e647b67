"""The inner SGD update on whole parameter tuples: a few multi-tensor (`torch._foreach_*`) operations per step
instead of a few per parameter.

A meta-step is bound by the host on a GPU: every ATen operation costs microseconds of dispatch whatever its
size, and the update theta - lr * g written per parameter is 2 operations per tensor forward and ~5 in the
meta-gradient's backward (the negation of sub, the product with lr, and the product, reduction and
accumulation of d/d lr): ~720 of a DistilBERT step's operations, whose 103 tensors are tiny next to the
rest. `sgd_apply` is one autograd node whose forward and backward are multi-tensor operations.

Why a Function of its own: in torch 2.14, `_foreach_mul(tensors, lr)` with a 0-d `lr` that requires grad
fails in backward ("inconsistent range for TensorList output"), the list-of-tensors form records a loop of
per-tensor backward nodes, and no `_foreach_*` operation runs under `torch.func.vmap` (the stacked nets
update outside vmap: models/stacked.py). The backward is first-order (`once_differentiable`): the
meta-gradient differentiates the update once; the inner gradients that enter it keep their own graph.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch.autograd.function import once_differentiable

Params = Tuple[torch.Tensor, ...]


class _SGDStep(torch.autograd.Function):
    """(lr, p_1..p_n, g_1..g_n) -> (p_i - lr * g_i)_i as multi-tensor operations, forward and backward."""

    @staticmethod
    def forward(ctx, lr: torch.Tensor, n: int, *tensors: torch.Tensor):
        params, grads = tensors[:n], tensors[n:]
        ctx.n = n
        ctx.save_for_backward(lr, *grads)
        return tuple(torch._foreach_sub(params, torch._foreach_mul(grads, lr)))

    @staticmethod
    @once_differentiable
    def backward(ctx, *d_new: torch.Tensor):
        lr, *grads = ctx.saved_tensors
        d_params = d_new if any(ctx.needs_input_grad[2:2 + ctx.n]) else (None,) * ctx.n
        d_grads = (tuple(torch._foreach_mul(d_new, lr.neg())) if any(ctx.needs_input_grad[2 + ctx.n:])
                   else (None,) * ctx.n)
        d_lr = None
        if ctx.needs_input_grad[0]:
            d_lr = signed_total(torch._foreach_mul(d_new, grads)).neg().to(lr.dtype).reshape(lr.shape)
        return (d_lr, None, *d_params, *d_grads)


def signed_total(tensors) -> torch.Tensor:
    """The sum of every element of every tensor, in a constant number of operations. There is no multi-tensor
    sum, only a multi-tensor norm: sum(x) = |max(x, 0)|_1 - |max(-x, 0)|_1, each part a `_foreach_norm`
    (one sum per tensor would be 103 operations per DistilBERT step; the rounding is a plain sum's)."""
    positive = torch._foreach_clamp_min(tensors, 0.0)
    negative = torch._foreach_sub(positive, tensors)  # max(x, 0) - x = max(-x, 0)
    return (torch.stack(torch._foreach_norm(positive, 1)) - torch.stack(torch._foreach_norm(negative, 1))).sum()


def sgd_apply(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], lr: torch.Tensor) -> Params:
    """theta - lr * g for every tensor of a parameter tuple, differentiable w.r.t. params, grads and lr (once:
    the meta-gradient's order). `lr` is a 0-d tensor (a learned step size) or a Python number."""
    lr = torch.as_tensor(lr, dtype=params[0].dtype, device=params[0].device) if not torch.is_tensor(lr) else lr
    return _SGDStep.apply(lr, len(params), *params, *grads)


def sgd_update(params: Params, grads, lr, buffers: Optional[list], momentum: float, weight_decay: float):
    """torch.optim.SGD's update (dampening 0, no Nesterov) on parameter tuples, without a graph (evaluation):
    (new params, momentum buffers)."""
    if weight_decay:
        grads = torch._foreach_add(list(grads), list(params), alpha=weight_decay)
    if momentum:
        if buffers is None:
            buffers = [g.clone() for g in grads]
        else:
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, list(grads))
        grads = buffers
    return sgd_apply(params, grads, lr), buffers

"""One run over several processes (GPUs): `torchrun --nproc_per_node=K -m dd_runner ...`.

What is split: the networks sampled at each outer step (net j goes to rank j % K) and the evaluation
networks. Every rank draws the same real batch and the same networks, since the batch stream and the
networks are functions of (seed, iteration, j); each trains and differentiates only its share. The
summed meta-gradient and loss are all-reduced and divided by the total number of nets, so every rank
takes the same Adam step and holds the same synthetic set; accuracies are gathered in net order.

Rank 0 alone writes: artefacts, checkpoints and failure records (`dd_runner.runtime.artefacts` writes nothing on
other ranks), W&B (`dd_runner.runtime.tracking`), the console and `dd-run.log`. All ranks share rank 0's run
directory (decided before Hydra starts, see `dd_runner.cli.preflight.shared_hydra_dirs`) and restore the same checkpoint.

Without torchrun (WORLD_SIZE unset or 1) every function here is the single-process identity.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import List, Sequence, TypeVar

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)
T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env() -> None:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    CPU tensors travel through gloo and CUDA tensors through NCCL (one group, two backends), so
    device=cpu works on a GPU node too. Ranks other than 0 keep stderr (warnings, errors) but not stdout
    (progress bars, tables): K copies of the console would be noise."""
    from dd_runner.core.errors import ConfigError

    if not launched() or active():
        return
    cuda = torch.cuda.is_available()
    if cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started more processes per node than there are GPUs "
                              f"({torch.cuda.device_count()}): use --nproc_per_node={torch.cuda.device_count()} "
                              "or fewer (on CPUs only: CUDA_VISIBLE_DEVICES= torchrun ...)")
        torch.cuda.set_device(local_rank)
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda and dist.is_nccl_available() else "gloo")
    if rank() != 0:
        sys.stdout = open(os.devnull, "w")


def shutdown() -> None:
    if active():
        dist.destroy_process_group()


def shard(items: Sequence[T]) -> List[T]:
    """This rank's share of `items`: those at positions j with j % world_size == rank."""
    return list(items[rank()::world_size()])


def gather(mine: Sequence[T], total: int) -> List[T]:
    """Undo `shard`: the values of all ranks, in the original order, on every rank."""
    world = world_size()
    if world == 1:
        return list(mine)
    parts: List[list] = [None] * world  # type: ignore[list-item]
    dist.all_gather_object(parts, list(mine))
    return [parts[j % world][j // world] for j in range(total)]


def max_over_ranks(value: int) -> int:
    """The largest `value` any rank holds (e.g. a stop signal received by one rank stops all of them at
    the same iteration)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()

"""What an outer step costs the host: ATen operations dispatched, minor page faults, process CPU time.

On a GPU the meta-step of a transformer is bound by the Python host, not the device: every ATen operation
costs a few microseconds of dispatch whatever its size (an H200 ran DistilBERT's 15,388 operations per
step at ~9 us each). So the number of operations per step says how fast a step can be, on any device, and
it can be counted on a CPU: `OpCounter` is a TorchDispatchMode that sees every operation below autograd
(forward, backward and double backward, views included), the level that reaches a kernel. The count
follows layers and steps, not width, so narrow models of the right depth count what full-size ones do.
"""

from __future__ import annotations

import collections
import resource
from typing import Dict, List, Tuple

from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations run inside `with OpCounter() as ops:`, per operator (its overload
    packet: aten.mm, aten.add, ...). Autograd's own threads (CUDA backward) inherit the mode."""

    def __init__(self):
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def table(self, top: int = 12) -> List[Tuple[str, int]]:
        """The `top` most frequent operators with their counts, most frequent first."""
        return self.counts.most_common(top)


def minor_faults() -> int:
    """Minor page faults of this process so far: pages the kernel had to map (and zero) on first touch,
    what glibc's malloc costs when it hands big blocks back to the system after every step."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def count_ops(step, top: int = 12) -> Dict[str, object]:
    """Run `step()` once under the counter: {"ops": total, "op_table": [[name, count], ...]}."""
    with OpCounter() as counter:
        step()
    return {"ops": counter.total, "op_table": [list(row) for row in counter.table(top)]}


FORWARD = "forward passes (and what autograd.grad sets up)"


def ops_by_node(step, top: int = 10) -> List[Tuple[str, int]]:
    """Run `step()` once under torch.profiler and attribute its top-level ATen operations to the autograd node
    whose backward ran them (NativeLayerNormBackwardBackward0: layer norm's double backward, ...), or to
    the forward passes: what a step's operations are spent on, beyond which operators they are."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    nodes: collections.Counter = collections.Counter()
    for event in prof.events():
        parent = event.cpu_parent
        if not event.name.startswith("aten::") or (parent is not None and parent.name.startswith("aten::")):
            continue  # not an operation, or one run inside another (a multi-tensor operation's loop on a CPU)
        while parent is not None and not parent.name.startswith("autograd::engine::evaluate_function"):
            parent = parent.cpu_parent
        nodes[parent.name.split(": ", 1)[1] if parent is not None else FORWARD] += 1
    return [list(row) for row in nodes.most_common(top)]

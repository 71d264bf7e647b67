"""The host allocator: stop glibc's malloc from handing big blocks back to the kernel after every step.

An outer step on a CPU allocates and frees the same large tensors (a real batch's activations, their
gradients) again and again. glibc's malloc serves blocks over its mmap threshold (128 KiB to 32 MiB,
adjusted on the fly) with fresh mmap()s and returns them with munmap(), and trims the top of its heap
past 128 KiB: every step the kernel maps, zeroes and unmaps the same memory again, ~44,000 minor page
faults per LeNet outer step (MNIST fixed init, real batch 1,024). Raising the thresholds keeps freed
blocks in the heap for the next step: no page faults, about a third less CPU time per step
(docs/performance.md). The price is memory: freed heap stays resident instead of going back to the
system, so the resident size stays near the run's peak (dd_runner.core.memory hands it back with
malloc_trim when a phase - distillation, evaluation - starts).

`allocator=auto` (the default) does this through mallopt() on glibc; elsewhere (macOS, musl) and with
`allocator=system` nothing changes. Thresholds the user set in the environment (MALLOC_*_ or
GLIBC_TUNABLES) are theirs: auto then leaves malloc alone too. mallopt is process-wide and only
affects later allocations, so it runs at the start of a run, before data and model exist.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Optional

ALLOCATORS = ("auto", "system")
# mallopt parameter numbers (glibc malloc.h) and the values: blocks under 2 GiB come from the heap (a
# GPT-Neo's logits for 64 real sequences of 64 tokens alone are 500 MB), the heap is never trimmed on its
# own (-1: a trim threshold under the peak would hand a step's memory back after every step), and each
# heap growth asks for 256 MiB more than it needs.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = ((M_MMAP_THRESHOLD, 2**31 - 1), (M_TRIM_THRESHOLD, -1), (M_TOP_PAD, 256 << 20))
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_applied: Optional[str] = None  # what configure() did in this process (mallopt cannot be undone)


def glibc() -> Optional[ctypes.CDLL]:
    """This process's C library when it is glibc (the one whose mallopt takes these parameters)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def configure(mode: str) -> str:
    """Apply `allocator=mode` to this process; returns what the host allocator now does, in words (the
    run logs it). Idempotent: a second run in the same process (a sweep) finds it done."""
    global _applied
    if mode not in ALLOCATORS:
        raise ValueError(f"allocator={mode!r} is not one of {', '.join(ALLOCATORS)}")
    if _applied:
        return _applied
    if mode == "system":
        return "system malloc, as configured"
    user = [name for name in USER_SETTINGS if name in os.environ]
    if user:
        return f"system malloc with the environment's {', '.join(user)}"
    libc = glibc()
    if libc is None:
        return "system malloc (not glibc: allocator=auto changes nothing here)"
    if not all(libc.mallopt(param, value) == 1 for param, value in SETTINGS):
        return "system malloc (glibc refused the raised thresholds)"
    _applied = "glibc malloc keeps freed blocks for reuse (mmap threshold 2 GiB, no trimming)"
    return _applied

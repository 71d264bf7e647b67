"""Peak memory of a phase of a run (distillation, evaluation): the CUDA allocator's peak on a GPU, the peak
resident set size on a CPU (Linux: VmHWM, reset through /proc/self/clear_refs at the start of the phase;
elsewhere the process's peak so far, which is an upper bound)."""

from __future__ import annotations

import ctypes
import resource
import sys
from pathlib import Path

import torch


class PeakMemory:
    """start() at the beginning of a phase; peak_mb() (above what was in use at start) or peak_total_mb()
    (everything in use at the peak) at its end."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.base = 0
        self.resettable = True

    @staticmethod
    def _status_kb(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise OSError(f"no {key} in /proc/self/status")

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        try:  # hand freed heap back to the OS, so that RSS is what is in use now
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
            self.base = self._status_kb("VmRSS") * 1024
        except OSError:  # not Linux: the process's peak so far, never reset
            self.resettable, self.base = False, 0

    def _peak_bytes(self) -> int:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated()
        if self.resettable:
            return self._status_kb("VmHWM") * 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere

    def peak_mb(self) -> float:
        return (self._peak_bytes() - self.base) / 2**20

    def peak_total_mb(self) -> float:
        return self._peak_bytes() / 2**20

"""Peak memory and device naming for one case's process."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import torch


class PeakMemory:
    """Memory an outer step needs above the state before it: CUDA allocator peak, or CPU peak RSS."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.base = 0

    @staticmethod
    def _status_kb(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {key} in /proc/self/status")

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        try:  # hand freed heap back to the OS, so that RSS is what is in use now
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
        self.base = self._status_kb("VmRSS") * 1024

    def peak_mb(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (self._status_kb("VmHWM") * 1024 - self.base) / 2**20


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "CPU")
    return f"{cpu}, {torch.get_num_threads()} threads"


# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) of the GPUs the model-FLOPs utilisation is taken
# against, matched by a fragment of torch.cuda.get_device_name(); the first match wins.
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("B200", 2250.0),
                    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0), ("4090", 165.0))


def bf16_peak_tflops(name: str):
    """The device's dense bf16 peak in TFLOP/s, or None when it is not in the table (a CPU, say)."""
    if "(cuda)" not in name:
        return None
    return next((peak for fragment, peak in BF16_PEAK_TFLOPS if fragment in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()

"""Device naming, synchronisation and the bf16 peaks that model-FLOPs utilisation is taken against, for one
case's process (its peak memory: dd_runner.core.memory)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


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

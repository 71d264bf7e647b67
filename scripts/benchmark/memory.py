"""Peak memory (dd_runner.core.memory) and device naming for one case's process."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from dd_runner.core.memory import PeakMemory  # noqa: F401  (the cases measure with it)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "CPU")
    return f"{cpu}, {torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()

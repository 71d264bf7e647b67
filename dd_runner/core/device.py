"""Device choice and mixed precision.

`device=auto` picks CUDA when present. `precision=bf16|fp16` autocasts forward passes only: synthetic
data, learned lrs, labels and network parameters stay fp32. bf16 is the recommended AMP mode: double
backward in fp16 tends to overflow, so fp16 also scales the outer loss (GradScaler).
"""

from __future__ import annotations

import contextlib

import torch

from dd_runner.core.errors import ConfigError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is visible to PyTorch "
                          f"(torch {torch.__version__}, cuda {torch.version.cuda}); use device=auto or device=cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device='{name}' is not a device; use auto, cpu or cuda") from None


class Precision:
    """Autocast context and loss scaler for one `precision` setting on one device."""

    def __init__(self, name: str, device: torch.device):
        if name not in ("fp32", *AUTOCAST_DTYPES):
            raise ConfigError(f"precision='{name}' is not supported; use fp32, bf16 or fp16")
        self.name = name
        self.device = device
        self.dtype = AUTOCAST_DTYPES.get(name)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> "torch.amp.GradScaler":
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def current_loss_scale(scaler: "torch.amp.GradScaler", device: torch.device) -> float:
    """The factor the outer loss is multiplied by (fp16); engines apply it to the objective themselves.
    scaler.scale() also initialises the scaler, which unscale_() / step() require."""
    return scaler.scale(torch.ones((), device=device)).item() if scaler.is_enabled() else 1.0


def peak_memory_mb(device: torch.device, reset: bool = True) -> float:
    """Peak memory since the last reset: allocated CUDA memory on a GPU, the process's peak RSS on a CPU
    (which cannot be reset: it is the peak so far)."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        if reset:
            torch.cuda.reset_peak_memory_stats(device)
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux

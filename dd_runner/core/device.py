"""Device choice, the backend flags, and mixed precision.

`device=auto` picks CUDA when present. `precision=bf16|fp16` autocasts forward passes only: synthetic
data, learned lrs, labels and network parameters stay fp32. bf16 is the recommended AMP mode: double
backward in fp16 tends to overflow, so fp16 also scales the outer loss (GradScaler).
"""

from __future__ import annotations

import contextlib

import torch

from dd_runner.core.errors import ConfigError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_backends(deterministic: bool) -> dict:
    """The speed / reproducibility flags of PyTorch's GPU backends, chosen here and nowhere else.

    By default: TF32 tensor cores for fp32 matrix products and convolutions (fp32 accumulation, inputs
    rounded to a 10-bit mantissa: far finer than bf16, which the fast path uses anyway, and 4-8x faster
    than IEEE fp32 on Ampere and later), and cuDNN benchmark mode (the inner loop runs the same
    convolution shapes thousands of times, so timing the algorithms once pays). deterministic=true
    switches both off (IEEE fp32; no per-run algorithm choice), turns on deterministic kernels
    (torch.use_deterministic_algorithms; ops without one raise) and sets CUBLAS_WORKSPACE_CONFIG, which
    cuBLAS needs for reproducible results. On a CPU the flags change nothing. Returns them."""
    import os

    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cuda.matmul.allow_tf32 = not deterministic
    torch.backends.cudnn.allow_tf32 = not deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    return backend_flags()


def backend_flags() -> dict:
    """The flags configure_backends sets, as they are now (for the record and the tests)."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_deterministic": torch.backends.cudnn.deterministic}


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


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device` without making the host wait for the GPU: a host tensor goes through pinned
    memory with non_blocking=True (a copy from pageable memory first synchronises the stream; the caching
    host allocator keeps the pinned buffer until the copy has run). Other moves are plain .to()."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


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

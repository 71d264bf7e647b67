"""ZCA whitening (`dataset.zca=true`), as trajectory matching (Cazenavette et al. 2022) whitens CIFAR.

Their code fits kornia's `ZCAWhitening(eps=0.1)` on the training images scaled to [0, 1] (no mean / std
normalisation first): the per-pixel mean m and the unbiased covariance C = U diag(S) U^T of the flattened
images give the transform x -> (x - m) U diag((S + eps)^-1/2) U^T, and its inverse
y -> y U diag((S + eps)^1/2) U^T + m. eps (`dataset.zca_eps`) regularises the small eigenvalues, so noise
directions are not blown up.

The fit is stored as three tensors — the mean, the eigenvectors U and the eigenvalues S (float32) — so the
same arithmetic whitens new images (`DistilledSet.normalise`) and undoes the whitening (images.png,
`dd-export`) without storing a second D x D matrix. `whiten` is the one function that applies it, used by
the loader and by the reader alike, so a reloaded set sees the inputs the run saw.
"""

from __future__ import annotations

from typing import Dict, Mapping

import torch

from dd_runner.core.errors import ConfigError, DataError

PREFIX = "zca/"  # the tensors' names in distilled.safetensors: zca/mean, zca/eigenvectors, zca/eigenvalues
MAX_FEATURES = 16384  # C x H x W; the eigenvectors are a D x D float32 matrix (1 GiB at this size)
CHUNK = 4096  # rows per matrix product: bounds the float64 copies of a large training split


def fit(images: torch.Tensor, eps: float) -> Dict[str, torch.Tensor]:
    """Fit on training images (N, C, H, W) in [0, 1]: {"mean", "eigenvectors", "eigenvalues", "eps"}."""
    n, features = images.shape[0], images[0].numel()
    if features > MAX_FEATURES:
        raise ConfigError(f"dataset.zca=true whitens C x H x W = {features} features, a {features}x{features} "
                          f"matrix; reduce dataset.image_shape (at most {MAX_FEATURES} features) or set dataset.zca=false")
    if n < 2:
        raise DataError("dataset.zca=true needs at least 2 training images to estimate a covariance")
    flat = images.reshape(n, features)
    mean = flat.double().mean(0)
    cov = torch.zeros(features, features, dtype=torch.float64)
    for start in range(0, n, CHUNK):
        centred = flat[start:start + CHUNK].double() - mean
        cov += centred.T @ centred
    cov /= n - 1  # unbiased, as kornia's default
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    return {"mean": mean.float(), "eigenvectors": eigenvectors.float().contiguous(),
            "eigenvalues": eigenvalues.clamp_min(0).float(), "eps": torch.tensor(float(eps))}


def whiten(x: torch.Tensor, fitted: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """x (N, C, H, W) in [0, 1] -> whitened, same shape."""
    u, scale = fitted["eigenvectors"], (fitted["eigenvalues"] + fitted["eps"]).rsqrt()
    flat = x.reshape(x.shape[0], -1) - fitted["mean"]
    return ((flat @ u) * scale @ u.T).reshape(x.shape)


def unwhiten(y: torch.Tensor, fitted: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The inverse of `whiten`: whitened (..., C, H, W) -> pixels in [0, 1] (not clamped)."""
    u, scale = fitted["eigenvectors"], (fitted["eigenvalues"] + fitted["eps"]).sqrt()
    flat = y.reshape(-1, u.shape[0]).float()
    return ((flat @ u) * scale @ u.T + fitted["mean"]).reshape(y.shape)


def stored(fitted: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The fit as tensors of distilled.safetensors (zca/<name>)."""
    return {f"{PREFIX}{k}": v.detach().cpu() for k, v in fitted.items()}


def from_tensors(tensors: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The fit read back from a file's tensors ({} when the set was not whitened)."""
    return {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}


def to_pixels(x: torch.Tensor, normalisation: Mapping, fitted: Mapping[str, torch.Tensor] = None) -> torch.Tensor:
    """Images (..., C, H, W) in the model's input space back to [0, 1] pixels, clamped: whitening undone
    when the set was whitened, else the mean / std normalisation."""
    x = x.detach().float().cpu()
    if normalisation.get("zca"):
        if not fitted:
            raise DataError("this set was ZCA-whitened but its file holds no zca/ tensors (a snapshot keeps "
                            "none): read the run's distilled.safetensors")
        return unwhiten(x, fitted).clamp(0, 1)
    mean = torch.tensor(normalisation.get("mean") or [0.0]).view(-1, 1, 1)
    std = torch.tensor(normalisation.get("std") or [1.0]).view(-1, 1, 1)
    return (x * std + mean).clamp(0, 1)

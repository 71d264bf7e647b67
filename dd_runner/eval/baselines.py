"""Baselines at the distilled set's budget: the same number of examples per class per step, the same
steps and epochs. Each returns inputs laid out like `SyntheticSet.data`, (steps, classes * ipc, ...),
in the synthetic space of the learner (pixels for images, input embeddings for text).
"""

from __future__ import annotations

import torch

from dd_runner.registry import Registry

SELECTORS = Registry("baseline")  # eval.baselines names; full_data is handled by the protocol itself
SELECTORS.add("random_real", "dd_runner.eval.baselines:random_real")
SELECTORS.add("class_mean", "dd_runner.eval.baselines:class_mean")
SELECTORS.add("kmeans", "dd_runner.eval.baselines:kmeans")
BASELINE_NAMES = SELECTORS.names() + ["full_data"]


def _layout(per_class: list, steps: int, ipc: int) -> torch.Tensor:
    """per_class[c]: (steps * ipc, ...) examples -> (steps, classes * ipc, ...) in class-slot order."""
    stacked = torch.stack([x.view(steps, ipc, *x.shape[1:]) for x in per_class], dim=1)  # steps, C, ipc
    return stacked.flatten(1, 2)


def _embed(learner, split, idx: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Rows `idx` of a split in the learner's synthetic space, converted a chunk at a time (a text split
    in embedding space is far larger than its token ids)."""
    return torch.cat([learner.to_synthetic_space(split.select(part).to(learner.device)).detach() for part in idx.split(chunk)])


def _class_pools(learner, split, num_classes):
    return [_embed(learner, split, idx) for idx in split.class_indices(num_classes)]


def random_real(learner, split, num_classes: int, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """Real examples drawn at random per class, each used once (only those are converted)."""
    need = steps * ipc
    picks = [idx[torch.randperm(len(idx), generator=gen)[:need]] for idx in split.class_indices(num_classes)]
    return _layout([_embed(learner, split, p) for p in picks], steps, ipc)


def class_mean(learner, split, num_classes: int, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """The mean example of each class in every slot of that class (accumulated chunk by chunk)."""
    means = []
    for idx in split.class_indices(num_classes):
        total = sum(_embed(learner, split, part).sum(0, dtype=torch.float64) for part in idx.split(1024))
        means.append((total / len(idx)).to(learner.dtype)[None].expand(steps * ipc, *total.shape))
    return _layout(means, steps, ipc)


def kmeans_centroids(x: torch.Tensor, k: int, gen: torch.Generator, iterations: int = 50) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding on flattened examples; returns (k, ...) centroids."""
    flat = x.flatten(1).double()
    first = torch.randint(len(flat), (1,), generator=gen).item()
    centroids = flat[first:first + 1]
    while len(centroids) < k:
        d2 = torch.cdist(flat, centroids).min(1).values.pow(2)
        probs = (d2 / d2.sum()).cpu() if d2.sum() > 0 else torch.full((len(flat),), 1.0 / len(flat))
        centroids = torch.cat([centroids, flat[torch.multinomial(probs, 1, generator=gen).item()][None]])
    for _ in range(iterations):
        assign = torch.cdist(flat, centroids).argmin(1)
        updated = torch.stack([flat[assign == j].mean(0) if (assign == j).any() else centroids[j] for j in range(k)])
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    return centroids.to(x.dtype).view(k, *x.shape[1:])


def kmeans(learner, split, num_classes: int, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """k-means centroids per class, k = steps * ipc (Wang et al. 2018's k-means baseline)."""
    pools = _class_pools(learner, split, num_classes)
    return _layout([kmeans_centroids(p, steps * ipc, gen) for p in pools], steps, ipc)

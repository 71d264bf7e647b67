"""Baselines at the distilled set's budget: the same number of examples per class per step, the same
steps and epochs. Each selector returns inputs laid out like `SyntheticSet.data`,
(steps, classes * ipc, ...), in the synthetic space of the learner (pixels for images, input embeddings
for text). Coresets (herding, k-center) select real examples in the feature space of a network trained on
the full training split.
"""

from __future__ import annotations

from typing import Callable, Dict, List

import torch

from dd_runner.core.registry import Registry

SELECTORS = Registry("baseline")  # eval.baselines names; full_data is handled by the protocol itself
for _name in ("random_real", "class_mean", "kmeans", "herding", "kcenter"):
    SELECTORS.add(_name, f"dd_runner.eval.baselines:{_name}")
BASELINE_NAMES = SELECTORS.names() + ["full_data"]


class ClassPool:
    """The real training examples of every class, in the synthetic space; features computed on demand by
    `feature_fn(split) -> (N, d)` (a network trained on the full split)."""

    def __init__(self, learner, split, num_classes: int, feature_fn: Callable = None):
        self.learner, self.split, self.num_classes = learner, split, num_classes
        self.indices = split.class_indices(num_classes)
        self._feature_fn = feature_fn
        self._examples: Dict[int, torch.Tensor] = {}
        self._features: Dict[int, torch.Tensor] = {}

    def _convert(self, rows: torch.Tensor, chunk: int = 1024):
        """Split rows in the synthetic space, a chunk at a time (text in embedding space is far larger
        than its token ids)."""
        for part in rows.split(chunk):
            yield self.learner.to_synthetic_space(self.split.select(part).to(self.learner.device)).detach()

    def examples(self, c: int) -> torch.Tensor:
        """Every example of class c (k-means needs them all)."""
        if c not in self._examples:
            self._examples[c] = torch.cat(list(self._convert(self.indices[c])))
        return self._examples[c]

    def select(self, c: int, positions: torch.Tensor) -> torch.Tensor:
        """Examples at `positions` within class c; only those are converted."""
        if c in self._examples:
            return self._examples[c][positions.to(self._examples[c].device)]
        return torch.cat(list(self._convert(self.indices[c][positions.to(self.indices[c].device)])))

    def mean(self, c: int) -> torch.Tensor:
        """The mean example of class c, accumulated in float64 chunk by chunk."""
        total = sum(x.sum(0, dtype=torch.float64) for x in self._convert(self.indices[c]))
        return (total / len(self.indices[c])).to(self.learner.dtype)

    def features(self, c: int) -> torch.Tensor:
        if c not in self._features:
            self._features[c] = self._feature_fn(self.split.select(self.indices[c])).double()
        return self._features[c]


def _layout(per_class: List[torch.Tensor], steps: int, ipc: int) -> torch.Tensor:
    """per_class[c]: (steps * ipc, ...) examples -> (steps, classes * ipc, ...) in class-slot order."""
    stacked = torch.stack([x.view(steps, ipc, *x.shape[1:]) for x in per_class], dim=1)  # steps, C, ipc
    return stacked.flatten(1, 2)


def _select(pool: ClassPool, steps: int, ipc: int, pick: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
    return _layout([pool.select(c, pick(c, steps * ipc)) for c in range(pool.num_classes)], steps, ipc)


def random_real(pool: ClassPool, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """Real examples drawn at random per class, each used once (only those are converted)."""
    return _select(pool, steps, ipc, lambda c, need: torch.randperm(len(pool.indices[c]), generator=gen)[:need])


def class_mean(pool: ClassPool, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """The mean example of each class in every slot of that class."""
    means = [pool.mean(c) for c in range(pool.num_classes)]  # each converts its whole class: once
    return _layout([m[None].expand(steps * ipc, *m.shape) for m in means], steps, ipc)


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


def kmeans(pool: ClassPool, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """k-means centroids per class, k = steps * ipc (Wang et al. 2018's k-means baseline)."""
    return _layout([kmeans_centroids(pool.examples(c), steps * ipc, gen) for c in range(pool.num_classes)], steps, ipc)


def herding_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """Herding (Welling 2009; iCaRL's exemplars): greedily add the example that keeps the running mean of
    the selection closest to the class mean in feature space."""
    mu = features.mean(0)
    chosen: List[int] = []
    total = torch.zeros_like(mu)
    for i in range(k):
        candidates = (total[None] + features) / (i + 1)
        distance = (candidates - mu).norm(dim=1)
        if chosen:
            distance[chosen] = float("inf")
        chosen.append(int(distance.argmin()))
        total = total + features[chosen[-1]]
    return torch.tensor(chosen)


def kcenter_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """k-center greedy (Sener & Savarese 2018): start at the example nearest the class mean, then keep
    adding the example farthest from everything chosen so far."""
    first = int((features - features.mean(0)).norm(dim=1).argmin())
    chosen = [first]
    nearest = (features - features[first]).norm(dim=1)
    for _ in range(k - 1):
        chosen.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, (features - features[chosen[-1]]).norm(dim=1))
    return torch.tensor(chosen)


def herding(pool: ClassPool, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    return _select(pool, steps, ipc, lambda c, need: herding_order(pool.features(c), need))


def kcenter(pool: ClassPool, steps: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    return _select(pool, steps, ipc, lambda c, need: kcenter_order(pool.features(c), need))

"""In-memory splits and the bundle of everything the runner needs to know about a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

from dd_runner.core.device import to_device


@dataclass
class Split:
    """Real examples held as tensors: images (N, C, H, W) or token ids (N, L) with a mask."""

    inputs: torch.Tensor
    labels: Optional[torch.Tensor] = None  # class ids (N,); None for language modelling
    mask: Optional[torch.Tensor] = None  # attention mask for token inputs

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def select(self, index: torch.Tensor) -> "Split":
        return Split(
            inputs=self.inputs[index],
            labels=None if self.labels is None else self.labels[index],
            mask=None if self.mask is None else self.mask[index],
        )

    def to(self, device: torch.device) -> "Split":
        """The split on `device` (from the host: through pinned memory, asynchronously; core.device.to_device)."""
        move = (lambda t: None if t is None else to_device(t, device))
        return Split(move(self.inputs), move(self.labels), move(self.mask))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.inputs, self.labels, self.mask) if t is not None)

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.select(torch.arange(start, min(start + batch_size, len(self))))

    def class_indices(self, num_classes: int) -> List[torch.Tensor]:
        return [torch.nonzero(self.labels == c).flatten() for c in range(num_classes)]


@dataclass
class DataBundle:
    name: str
    task: str  # classification | language_modeling
    modality: str  # image | text
    train: Split
    val: Split
    test: Split
    num_classes: Optional[int] = None
    class_names: List[str] = field(default_factory=list)
    example_shape: tuple = ()  # shape of one real input (images) or () for text
    normalisation: Dict[str, Any] = field(default_factory=dict)  # {"mean": [...], "std": [...]} (+ "zca": {...})
    whitening: Dict[str, torch.Tensor] = field(default_factory=dict)  # dataset.zca: the fit (data/zca.py), else {}
    tokenizer: Any = None  # text datasets: the tokenizer that produced the ids
    source: str = ""  # where the data came from, for the record

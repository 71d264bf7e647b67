"""An exponential moving average of the synthetic set over recent outer iterations (`distill.average`).

Fixed-init sets swing by several points of accuracy between nearby iterations even late in the outer lr
schedule; the average of the last ~1/(1 - decay) iterations smooths those swings (Polyak averaging). The
average is scored beside the raw set at every validation point and the best of both is kept, so turning
it on can only add candidates; it never changes the optimisation itself.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List

import torch


class SetAverage:
    def __init__(self, params: List[torch.nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().clone() for p in params]

    def update(self) -> None:
        """Fold the current values in. The weight of the past warms up as (1 + n) / (10 + n) so that the
        average of an early iteration is not dominated by the random initial set."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for avg, p in zip(self.shadow, self.params):
                avg.mul_(decay).add_(p.detach(), alpha=1 - decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged values in place of the raw ones (for validation or to keep them), then back."""
        raw = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, avg in zip(self.params, self.shadow):
                p.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, raw):
                    p.copy_(value)

    def state_dict(self) -> Dict[str, object]:
        return {"updates": self.updates, "shadow": list(self.shadow)}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.updates = int(state["updates"])
        with torch.no_grad():
            for avg, value in zip(self.shadow, state["shadow"]):
                avg.copy_(value)

"""What an outer loop cost, split honestly: the optimisation itself, validation (with its snapshots) and
checkpoints, each in wall time and in process CPU time.

`distill/seconds_per_iteration` is the optimisation's wall time per outer iteration with validation and
checkpoints left out (a run with eval.every=10 and one with eval.every=0 read the same), and
`distill/cpu_seconds_per_iteration` its process CPU time (all threads: on a CPU shared with other
processes it is the steadier figure; on a GPU, how busy the host is). The parts are carried across
resumes in the loop's checkpointed statistics.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict, Iterator

from dd_runner.context import LoopStats

PARTS = ("validation", "checkpoint")


class LoopCosts(LoopStats):
    """LoopStats (wall time, last loss) plus process CPU time and the time spent in each of PARTS."""

    def __init__(self):
        super().__init__()
        self.cpu, self._cpu_start = 0.0, time.process_time()
        self.parts = {part: [0.0, 0.0] for part in PARTS}  # part -> [wall seconds, CPU seconds]

    def cpu_elapsed(self) -> float:
        return self.cpu + time.process_time() - self._cpu_start

    @contextmanager
    def timing(self, part: str) -> Iterator[None]:
        """Count the time spent inside the block as `part` (validation, checkpoint)."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.parts[part][0] += time.perf_counter() - wall
            self.parts[part][1] += time.process_time() - cpu

    def metrics(self, iterations: int) -> Dict[str, float]:
        """The distill/* cost figures of `iterations` outer iterations."""
        wall, cpu = self.elapsed(), self.cpu_elapsed()
        aside_wall = sum(w for w, _ in self.parts.values())
        aside_cpu = sum(c for _, c in self.parts.values())
        n = max(1, iterations)
        return {"distill/seconds_per_iteration": (wall - aside_wall) / n, "distill/cpu_seconds": cpu,
                "distill/cpu_seconds_per_iteration": (cpu - aside_cpu) / n,
                **{f"distill/{part}_seconds": w for part, (w, _) in self.parts.items()}}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "cpu_seconds": self.cpu_elapsed(),
                **{f"{part}_seconds": list(times) for part, times in self.parts.items()}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)  # checkpoints written before these figures existed lack them: zeros
        self.cpu, self._cpu_start = float(state.get("cpu_seconds", 0.0)), time.process_time()
        for part in PARTS:
            self.parts[part] = [float(v) for v in state.get(f"{part}_seconds", [0.0, 0.0])]

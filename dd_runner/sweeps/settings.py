"""Settings of a sweep: its jobs grouped by the values of the swept keys, seeds apart, in a natural
order (numbers by value, then text)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from dd_runner.sweeps.jobs import Job


@dataclass
class Setting:
    values: Tuple[str, ...]  # one per setting key
    jobs: List[Job]

    @property
    def finished(self) -> List[Job]:
        return [j for j in self.jobs if j.status == "finished"]

    def stats(self, metric: str) -> Tuple[Optional[float], Optional[float], int]:
        """(mean, std, n) of `metric` across the finished seeds that report it (std None for one seed)."""
        values = [j.metrics[metric] for j in self.finished if isinstance(j.metrics.get(metric), (int, float))]
        if not values:
            return None, None, 0
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)


def as_number(value: Optional[str]) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def sort_key(value: Optional[str]):
    number = as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))


def group(jobs: Sequence[Job], keys: Sequence[str]) -> List[Setting]:
    settings: Dict[Tuple[str, ...], List[Job]] = {}
    for job in jobs:
        settings.setdefault(tuple(job.overrides.get(k, "") for k in keys), []).append(job)
    ordered = sorted(settings.items(), key=lambda item: [sort_key(v) for v in item[0]])
    return [Setting(values, members) for values, members in ordered]

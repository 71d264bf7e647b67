"""report.png of `dd-report`: accuracy against one swept key, one line per setting of the other keys,
error bars = std across seeds; settings without a finished seed are marked on the axis."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from dd_runner.sweeps.settings import Setting, as_number, sort_key


def choose_x(keys: Sequence[str], settings: Sequence[Setting]) -> Optional[str]:
    """The swept key with the most distinct values, numeric keys first."""
    def rank(i_key):
        i, key = i_key
        values = {s.values[i] for s in settings}
        return (all(as_number(v) is not None for v in values), len(values), -i)
    return max(enumerate(keys), key=rank)[1] if keys else None


def plot(path: Path, title: str, keys: Sequence[str], settings: Sequence[Setting], metric: str, x: Optional[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xi = keys.index(x) if x else None
    lines: Dict[Tuple[str, ...], List[Tuple[str, float, float]]] = {}
    missing = []  # x values of settings without a result (every seed failed): marked on the axis
    for s in settings:
        mean, std, _ = s.stats(metric)
        xv = s.values[xi] if xi is not None else "all"
        if mean is None:
            missing.append(xv)
            continue
        label = tuple(f"{k}={v}" for i, (k, v) in enumerate(zip(keys, s.values)) if i != xi)
        lines.setdefault(label, []).append((xv, 100 * mean, 100 * (std or 0.0)))
    xs_all = sorted({p[0] for pts in lines.values() for p in pts} | set(missing), key=sort_key)
    numeric = all(as_number(v) is not None for v in xs_all)
    position = {v: (as_number(v) if numeric else i) for i, v in enumerate(xs_all)}

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        points.sort(key=lambda p: sort_key(p[0]))
        ax.errorbar([position[p[0]] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                    marker="o", capsize=4, label=" ".join(label) or "distilled")
    if missing:
        ax.plot([position[v] for v in missing], [0.02] * len(missing), "x", color="red", markersize=9,
                transform=ax.get_xaxis_transform(), label="no finished seed")
    if numeric and len(xs_all) > 1 and min(position.values()) > 0 and max(position.values()) / min(position.values()) >= 50:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(xs_all)), xs_all)
    ax.set_xlabel(x or "")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    ax.grid(alpha=0.3)
    if lines or missing:
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)

"""rich output: a progress bar with ETA and the current loss, and the final results table."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from rich import get_console
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class Bar:
    def __init__(self, progress: Progress, task):
        self._progress, self._task = progress, task

    def update(self, advance: int = 1, **values: float) -> None:
        info = "  ".join(f"{k} {v:.4f}" for k, v in values.items() if v is not None and math.isfinite(v) and v >= 0)
        self._progress.update(self._task, advance=advance, info=info)


@contextmanager
def progress(description: str, total: int, completed: int = 0) -> Iterator[Bar]:
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=get_console(), transient=False) as p:
        yield Bar(p, p.add_task(description, total=total, completed=completed, info=""))


def results_table(rows: List[Tuple[str, Dict[str, float]]], title: str, archs: Sequence[str] = (),
                  own: str = "", caption: Optional[str] = None) -> Table:
    """rows: (name, {"acc_mean", "acc_std", "n_nets", optional "lr", optional "ppl_mean"/"ppl_std", optional
    "archs": {model: the same for another architecture}}). Language modelling adds a perplexity column; its
    accuracy is next-token accuracy. `archs`: a column each (cross-architecture evaluation), beside the main
    one of the `own` architecture."""
    ppl = any("ppl_mean" in m for _, m in rows)
    table = Table(title=title, caption=caption)
    columns = [("", "left"), ("test perplexity", "right")] if ppl else [("", "left")]
    main = "next-token accuracy" if ppl else "test accuracy"
    columns += [(f"{main}, {own}" if archs else main, "right"), ("nets", "right"), ("lr", "right")]
    columns += [(arch, "right") for arch in archs]
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for name, m in rows:
        lr = f"{m['lr']:.3g}" if isinstance(m.get("lr"), float) else str(m.get("lr", ""))
        cells = [f"{m['ppl_mean']:.2f} ± {m['ppl_std']:.2f}"] if ppl else []
        others = [_percent(m["archs"][a]) if a in m.get("archs", {}) else "-" for a in archs]
        table.add_row(name, *cells, _percent(m), str(m["n_nets"]), lr, *others)
    return table


def _percent(m: Dict[str, float]) -> str:
    return f"{100 * m['acc_mean']:.2f} ± {100 * m['acc_std']:.2f} %"


def accuracy_cell(metrics: Dict[str, float], prefix: str) -> str:
    """'mean ± std' in percent of metrics.json's `<prefix>/acc_mean` and `_std`, or '-' (report scripts)."""
    if f"{prefix}/acc_mean" not in metrics:
        return "-"
    return f"{100 * metrics[prefix + '/acc_mean']:.1f} ± {100 * metrics[prefix + '/acc_std']:.1f}"


def print_table(table: Table, console: Console = None) -> None:
    (console or get_console()).print(table)

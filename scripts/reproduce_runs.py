"""What the reproduce_*.py scripts share: run a table's cells as real `dd-run` processes (continuing where
they stopped), and write the table as Markdown and JSON with the provenance of every figure.

A cell is one dd-run process in `outputs/reproduce/<name>/runs/<key>/`. Running a script again reuses a
finished cell (its metrics.json) if it ran with the same settings, continues an interrupted one from its
checkpoint (`dd-run resume=<cell>`), and refuses, in one line, a directory that holds a run of other
settings. Every figure in the table is read from a finished
run's metrics.json; beside it stand the command line, the dataset split, the budget, the wall time (the
run's own distill + eval seconds, carried across resumes) and the machine.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

RUNTIME = ("output_dir", "logger")  # where and how a run reports, not what it computes


@dataclass
class Cell:
    key: str  # directory name under runs/
    overrides: List[str]  # dd-run overrides (without output_dir)
    labels: Dict[str, str] = field(default_factory=dict)  # the table's leading columns for this cell


@dataclass
class Result:
    cell: Cell
    out: Path
    metrics: Dict[str, float]
    config: object  # the run's resolved config (config.yaml)
    command: str
    machine: str
    process_seconds: Optional[float] = None  # the dd-run process as timed by the script (None: run by hand)

    def get(self, key: str, default=None):
        return self.metrics.get(key, default)


def machine() -> str:
    """The machine in a few words: CPU model and cores, or the GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores"


def settings(overrides: Sequence[str]) -> Dict[str, str]:
    """key -> value of an override list, the last one winning (as in Hydra), runtime keys left out."""
    return {k.lstrip("+"): v for k, _, v in (o.partition("=") for o in overrides) if k.lstrip("+") not in RUNTIME}


class Reproduction:
    """One table: its cells under outputs/reproduce/<name>/runs/, its files table.md / table.json."""

    def __init__(self, name: str, root: str = "outputs/reproduce", runtime: Sequence[str] = ("logger=none",),
                 dry_run: bool = False):
        self.name, self.dir = name, Path(root) / name
        self.runtime = list(runtime)
        self.dry_run = dry_run
        self.machine = machine()

    def run(self, cell: Cell) -> Optional[Result]:
        out = self.dir / "runs" / cell.key
        args = [*cell.overrides, *self.runtime, f"output_dir={out}"]
        command = "dd-run " + " ".join(shlex.quote(a) for a in args)
        metrics = out / "metrics.json"
        recorded = out / ".hydra" / "overrides.yaml"
        if recorded.is_file():  # never continue or show a run of other settings
            then, now = settings(OmegaConf.load(recorded)), settings(args)
            if then != now:
                changed = ", ".join(f"{k}: {then.get(k, 'unset')} -> {now.get(k, 'unset')}"
                                    for k in sorted(then.keys() | now.keys()) if then.get(k) != now.get(k))
                sys.exit(f"{self.name}: {out} was run with other settings ({changed}); "
                         "pass another --out or delete that directory")
        if not metrics.is_file():
            if self.dry_run:
                print(f"(not run) $ {command}")
                return None
            # An interrupted cell continues from its checkpoint with its own saved config (dd-run resume=DIR),
            # which also bridges settings dd-run gained since (they take their defaults).
            resume = (out / "checkpoint.safetensors").is_file()
            launch = [f"resume={out}"] if resume else args  # resume keeps the run's own logger too
            print(f"$ {command}" + (f"\n  continuing it: dd-run {' '.join(launch)}" if resume else ""), flush=True)
            start = time.perf_counter()
            code = subprocess.run([sys.executable, "-m", "dd_runner", *launch], stdout=subprocess.DEVNULL).returncode
            if code:
                sys.exit(f"{self.name}: dd-run exited with {code} in {out} (its dd-run.log has the details); "
                         "run this script again to continue")
            seconds = time.perf_counter() - start
            print(f"  done in {seconds:.0f} s", flush=True)
            (out / "reproduce.json").write_text(json.dumps({"machine": self.machine, "command": command,
                                                            "process_seconds": seconds}, indent=2))
        sidecar = out / "reproduce.json"  # the machine that ran it, recorded the first time it is seen finished
        if not sidecar.is_file():
            sidecar.write_text(json.dumps({"machine": self.machine, "command": command}, indent=2))
        record = json.loads(sidecar.read_text())
        return Result(cell, out, json.loads(metrics.read_text()), OmegaConf.load(out / "config.yaml"), command,
                      record["machine"], record.get("process_seconds"))

    def run_all(self, cells: Sequence[Cell], jobs: int = 1) -> List[Optional[Result]]:
        """run() for each cell, `jobs` dd-run processes at a time; results in the order of `cells`."""
        if jobs <= 1:
            return [self.run(c) for c in cells]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(self.run, cells))

    def write(self, title: str, columns: Sequence[str], rows: List[Dict[str, str]], results: List[Result],
              notes: Sequence[str] = ()) -> str:
        """Print the table and write it as table.md and table.json; returns the Markdown."""
        self.dir.mkdir(parents=True, exist_ok=True)
        commands: List[str] = []  # long command lines go under the table, numbered; the row names its number
        for r in rows:
            if r.get("command") and r["command"] not in commands:
                commands.append(r["command"])

        def cell(r, c):
            return f"[{commands.index(r[c]) + 1}]" if c == "command" and r.get(c) else str(r.get(c, ""))

        lines = [f"**{title}**", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(cell(r, c) for c in columns) + " |" for r in rows]
        lines += ["", *[f"[{i}] {c}  " for i, c in enumerate(commands, 1)], "", *notes]
        markdown = "\n".join(lines).rstrip() + "\n"
        (self.dir / "table.md").write_text(markdown)
        payload = {"title": title, "columns": list(columns), "rows": rows, "notes": list(notes),
                   "runs": [{"key": r.cell.key, "dir": str(r.out), "command": r.command, "machine": r.machine,
                             "metrics": r.metrics} for r in results]}
        (self.dir / "table.json").write_text(json.dumps(payload, indent=2))
        print(markdown)
        print(f"written: {self.dir / 'table.md'}, {self.dir / 'table.json'}")
        print(import_hint(self.name, self.dir / "table.json"))
        return markdown


def import_hint(record: str, table: Path) -> str:
    """The command that puts a finished table into the docs' results pages (docs/results/, one record each)."""
    return f"into the docs: python scripts/results_pages.py --import {record} {table}"


# --- cells of a row: the provenance columns every table carries -------------------------------------
def split_of(cfg) -> str:
    d = cfg.dataset
    source = d.get("root") or ", ".join(Path(str(f)).name for f in (d.get("data_files") or {}).values()) or d.get("hub_name")
    return f"{d.name} ({source}): train {d.train_split}, val {d.val_split}, test {d.test_split}"


def budget_of(cfg) -> str:
    d = cfg.distill
    if cfg.mode == "train":
        return training_budget(cfg)
    decay = d.decay_every or max(1, d.iterations // 10)
    per_step = (f"{d.ipc} sequence(s) of {d.seq_len} tokens" if cfg.dataset.get("task") == "language_modeling"
                else f"{d.ipc}/class")
    return (f"{d.iterations} it. x {d.sample_nets} net(s), batch {d.batch_size}, lr {d.lr} x{d.decay_factor}/{decay} it.; "
            f"{d.steps} step(s) x {d.epochs} epoch(s) x {per_step}")


def training_budget(cfg) -> str:
    """The budget of ordinary training (mode=train, or the full_data ceiling of a distillation run)."""
    t = cfg.train
    return f"train {t.epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.lr}"


def provenance(r: Result, budget: Callable = budget_of) -> Dict[str, str]:
    seconds = r.get("distill/seconds", 0.0) + r.get("eval/seconds", 0.0) or r.get("train/seconds") or r.process_seconds
    return {"command": f"`{r.command}`", "split": split_of(r.config), "budget": budget(r.config),
            "wall": f"{seconds / 60:.1f} min" if seconds else "-", "machine": r.machine}


def pct(r: Optional[Result], prefix: str) -> str:
    """`prefix`/acc_mean (± std over nets when more than one) in percent; '-' when absent."""
    if r is None or f"{prefix}/acc_mean" not in r.metrics:
        return "-"
    mean, std, n = r.metrics[f"{prefix}/acc_mean"], r.metrics.get(f"{prefix}/acc_std", 0.0), r.metrics.get(f"{prefix}/n_nets", 1)
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if n and n > 1 else f"{100 * mean:.1f}"

"""Compare the method families under one protocol on the offline MNIST split.

    python scripts/compare_methods.py                       # ConvNet and LeNet, 1 and 10 images per class
    python scripts/compare_methods.py --quick               # a smoke run: tiny budgets, minutes on a CPU
    python scripts/compare_methods.py --models convnet --ipc 1 --methods dm gm -- eval.nets=30

Every cell is real `dd-run` processes: random init, the same `eval.nets` unseen networks, the DC / DM / MTT
evaluation schedule (`eval.schedule=train`: minibatch SGD with momentum, lr tuned on validation) for every
method and baseline. Trajectory matching first trains its experts (`dd-run mode=experts`). Performance
matching spends the budget as steps x 1 image per class (its natural layout); the others as one step of
`ipc` images per class. Each baseline (random real, herding, k-center, k-means) is its own
`dd-run mode=baselines` cell, so cells can run in parallel processes or be spread over sessions (a cell on
disk is reused only if it ran with the same settings; other settings need another `--out`):

    python scripts/compare_methods.py --models convnet --ipc 10 --methods gm --baselines &
    python scripts/compare_methods.py --models convnet --ipc 10 --methods --baselines herding kmeans &

The papers' protocol (DSA while evaluation networks train, 1,000 epochs, and the set also evaluated on
other architectures, each with its own tuned lr; baselines too) is

    python scripts/compare_methods.py --eval-augment dsa --eval-models convnet mlp lenet alexnet resnet18

which adds a table with a column per architecture; every table names its protocol. Each cell also reports
its cost: seconds per outer iteration and peak memory (CUDA max allocated, or peak RSS on a CPU), and the
budget that produced it. The tables are also written as Markdown and JSON (`<out>/table.md`, `table.json`).

On a CPU with AVX512-BF16 or AMX, `-- precision=bf16` trains ConvNets 1.7-2.1x faster at the same accuracy
(ConvNet, 1 per class, random real: 60.0 +- 1.4% in both precisions).

Offline split: train test[:7200], val test[7200:8000], test test[8000:] of the official MNIST test file.
Published anchors (ConvNet, full MNIST, 1 / 10 per class): DC 91.7 / 97.4, DSA 88.7 / 97.8, DM 89.7 / 97.5.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reproduce_runs import import_hint, machine

from dd_runner.core.progress import accuracy_cell as pct

METHODS = {  # name -> (label, overrides)
    "pm": ("performance matching", ["method=performance_matching", "distill.epochs=3"]),
    "gm": ("gradient matching (DSA)", ["method=gradient_matching", "augment=dsa"]),
    "dm": ("distribution matching", ["method=distribution_matching", "augment=dsa"]),
    "mtt": ("trajectory matching", ["method=trajectory_matching"]),
}
BASELINES = ["random_real", "herding", "kcenter", "kmeans"]
BUDGETS = {  # per method: iterations (and method knobs) for a CPU-sized run; --quick divides them
    "pm": ["distill.iterations=400", "distill.sample_nets=2", "distill.batch_size=256", "distill.lr=0.01"],
    "gm": ["distill.iterations=200", "method.batch_real=128"],
    "dm": ["distill.iterations=400", "method.batch_real=128"],
    "mtt": ["distill.iterations=200", "distill.epochs=10", "method.expert_epochs=2", "method.max_start_epoch=3"],
}
EXPERTS = ["experts.count=3", "experts.epochs=5"]


def settings(overrides) -> dict:
    """key -> value of a dd-run override list, the last one winning (as in Hydra); output_dir is where, not what."""
    return {k: v for k, _, v in (o.partition("=") for o in overrides) if k != "output_dir"}


def dd_run(overrides, out: Path, console: Console) -> dict:
    metrics = out / "metrics.json"
    if metrics.exists():  # re-running the script continues where it stopped, but never with other settings
        then, now = settings(OmegaConf.load(out / ".hydra" / "overrides.yaml")), settings(overrides)
        if then != now:
            changed = ", ".join(f"{k}: {then.get(k, 'unset')} -> {now.get(k, 'unset')}"
                                for k in sorted(then.keys() | now.keys()) if then.get(k) != now.get(k))
            sys.exit(f"compare_methods: {out} was run with other settings ({changed}); "
                     "pass another --out or delete that directory")
    else:
        console.print(f"[bold]$ dd-run {escape(' '.join(overrides))}")  # escape: eval.baselines=[herding] is not markup
        subprocess.run([sys.executable, "-m", "dd_runner", *overrides, f"output_dir={out}"], check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(metrics.read_text())


def cell_budget(cell: Path) -> str:
    """What produced a cell: the distillation budget (none for a coreset) and the evaluation networks'."""
    cfg = OmegaConf.load(cell / "config.yaml")
    e = cfg.eval
    lr = f"lr {e.lr_grid[0]}" if len(e.lr_grid) == 1 else f"lr tuned over {len(e.lr_grid)}"
    evaluation = f"eval {e.nets} net(s) x {e.train_epochs} epochs, {lr}"
    if cfg.mode == "baselines":
        return f"selection; {evaluation}"
    return f"{cfg.distill.iterations} it. x {cfg.distill.sample_nets} net(s); {evaluation}"


def write_tables(root: Path, tables, notes) -> None:
    """The console tables as Markdown (table.md) and JSON (table.json) under the comparison's directory."""
    # a console cell's two lines, one in Markdown and JSON: "91.5 ± 0.1\n733 s" -> "91.5 ± 0.1 (733 s)"
    tables = [(t, c, [[v.replace("\n", " (") + ")" if "\n" in v else v for v in row] for row in rows])
              for t, c, rows in tables]
    lines = []
    for title, columns, rows in tables:
        lines += [f"**{title}**", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "table.md").write_text("\n".join(lines + list(notes)).rstrip() + "\n")
    (root / "table.json").write_text(json.dumps({"tables": [{"title": t, "columns": list(c), "rows": r}
                                                            for t, c, r in tables], "notes": list(notes),
                                                 "command": shlex.join(["python", "scripts/compare_methods.py", *sys.argv[1:]]),
                                                 "machine": machine()}, indent=2))
    print(f"written: {root / 'table.md'}, {root / 'table.json'}")
    print(import_hint(root.name, root / "table.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["convnet", "lenet"])
    parser.add_argument("--ipc", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--baselines", nargs="*", default=BASELINES, choices=BASELINES,
                        help="the baseline cells to run (none: only those already run are shown)")
    parser.add_argument("--eval-augment", choices=["none", "dsa"], default="none",
                        help="eval.augment of every cell, methods and baselines alike (dsa: the papers' protocol)")
    parser.add_argument("--eval-models", nargs="*", default=[],
                        help="eval.models of every cell: architectures the sets are also evaluated on")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the pipeline, not the figures")
    parser.add_argument("--out", default="outputs/compare_methods")
    parser.add_argument("overrides", nargs="*", help="dd-run overrides for every run, applied last (after --)")
    args = parser.parse_args()
    console = Console()
    root = Path(args.out)
    common = ["dataset=mnist_offline", "init=random", "logger=none", "eval.schedule=train", "eval.nets=20",
              "eval.val_nets=4", "eval.tune_nets=2", "eval.lr_grid=[0.003,0.01,0.03,0.1]"]
    common += [f"eval.augment={args.eval_augment}"]  # the same for every cell: not each method's own augment
    if args.eval_models:
        common += [f"eval.models=[{','.join(args.eval_models)}]", "eval.cross_baselines=true"]
    if args.quick:
        common += ["eval.nets=2", "eval.train_epochs=5", "eval.lr_grid=[0.01]", "eval.tune_nets=1"]

    def budget(name):
        if not args.quick:
            return BUDGETS[name]
        quick = {"distill.iterations": "2", "method.max_start_epoch": "1"}  # quick experts have 3 epochs
        return [f"{k}={quick[k]}" if (k := o.split("=")[0]) in quick else o for o in BUDGETS[name]]

    table = Table(title="Method families on the offline MNIST split (random init, eval.schedule=train, "
                        f"eval.augment={args.eval_augment})")
    cross = Table(title=f"The same sets on other architectures ({', '.join(args.eval_models)})")
    cross_columns = ("distilled on", "ipc", "set", *args.eval_models, "budget", "s / iteration", "peak MB (distill / eval)")
    for col in cross_columns:
        cross.add_column(col, justify="left" if col in ("distilled on", "set", "budget") else "right")
    main_rows, cross_rows = [], []
    protocol = ""
    main_columns = ("model", "ipc", *(METHODS[m][0] for m in args.methods), *BASELINES)
    for col in main_columns:
        table.add_column(col, justify="left" if col == "model" else "right")
    for model in args.models:
        experts = None
        if "mtt" in args.methods:
            quick = ["experts.count=1", "experts.epochs=3"] if args.quick else EXPERTS
            dd_run([f"model={model}", "dataset=mnist_offline", "logger=none", "mode=experts", *quick, *args.overrides],
                   root / f"experts-{model}", console)
            experts = root / f"experts-{model}" / "experts"
        for ipc in args.ipc:
            cells = []
            for name in args.methods:
                layout = [f"distill.steps={ipc}", "distill.ipc=1"] if name == "pm" else ["distill.steps=1", f"distill.ipc={ipc}"]
                extra = [f"method.experts={experts}"] if name == "mtt" else []
                start = time.perf_counter()
                overrides = [*common, *METHODS[name][1], *layout, *budget(name), *extra, "eval.baselines=[]", *args.overrides]
                m = dd_run([f"model={model}", *overrides], root / f"{model}-ipc{ipc}-{name}", console)
                cells.append(f"{pct(m, 'test')}\n{m['distill/seconds']:,.0f} s")
                protocol = m.get("eval/protocol", protocol)
                cross_rows.append([model, str(ipc), METHODS[name][0], *(pct(m, f"test/{a}") for a in args.eval_models),
                                   cell_budget(root / f"{model}-ipc{ipc}-{name}"),
                                   f"{m.get('distill/seconds_per_iteration', float('nan')):.3g}",
                                   f"{m.get('distill/peak_memory_mb', float('nan')):,.0f} / "
                                   f"{m.get('eval/peak_memory_mb', float('nan')):,.0f}"])
                console.print(f"{model} ipc={ipc} {name}: {pct(m, 'test')} ({time.perf_counter() - start:.0f} s)")
            baselines = {}
            for b in BASELINES:  # the budget only: the layout of the DC / DM / MTT cells
                cell = root / f"{model}-ipc{ipc}-baseline-{b}"
                m = None
                if b in args.baselines or (cell / "metrics.json").exists():  # one run earlier is shown (same settings)
                    m = dd_run([f"model={model}", *common, "mode=baselines", "distill.steps=1", f"distill.ipc={ipc}",
                                f"eval.baselines=[{b}]", *args.overrides], cell, console)
                baselines[b] = pct(m, f"baselines/{b}") if m else "-"
                if m:
                    cross_rows.append([model, str(ipc), b, *(pct(m, f"baselines/{b}/{a}") for a in args.eval_models),
                                       cell_budget(cell), "-", f"- / {m.get('eval/peak_memory_mb', float('nan')):,.0f}"])
            main_rows.append([model, str(ipc), *cells, *baselines.values()])
    for row in main_rows:
        table.add_row(*row)
    for row in cross_rows:
        cross.add_row(*row)
    legend = "cells: test accuracy (%) mean ± std over eval.nets unseen initialisations; distillation wall time"
    protocol = protocol or f"protocol: eval.augment={args.eval_augment}"
    console.print(table)
    console.print(legend)
    tables = [(table.title, main_columns, main_rows)]
    if args.eval_models:
        console.print(cross)
        tables.append((cross.title, cross_columns, cross_rows))
    console.print(protocol, soft_wrap=True)
    write_tables(root, tables, [legend, protocol])


if __name__ == "__main__":
    main()

"""Reproduce Wang et al. 2018's two MNIST settings with dd-run and print them beside the baselines.

    python scripts/reproduce_mnist.py                 # offline split of ../shared/data/mnist
    python scripts/reproduce_mnist.py --full          # the full MNIST (downloads it)
    python scripts/reproduce_mnist.py --setting fixed --iterations 500 -- distill.lr=0.05

Settings (conf/experiment/): `mnist_fixed_10` — fixed init, 10 images (1 step x 3 epochs, 1 per class);
`mnist_random_100` — random init, 100 images (10 steps x 3 epochs, 1 per class per step), evaluated on
20 unseen initialisations. Paper (full MNIST): 93.8% and 79.5 +- 8.1%. Each setting is one real
`dd-run` process; its metrics.json is read back, so the figures are exactly what a user would get.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dd_runner.core.progress import accuracy_cell as pct

SETTINGS = {
    "fixed": ("mnist_fixed_10", "fixed init, 10 images", "93.8"),
    "random": ("mnist_random_100", "random init, 100 images", "79.5 ± 8.1"),
}
BASELINES = ["random_real", "random_real_learned_lrs", "class_mean", "kmeans", "full_data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="full MNIST (dataset=mnist) instead of the offline split")
    parser.add_argument("--setting", choices=[*SETTINGS, "both"], default="both")
    parser.add_argument("--iterations", type=int, help="override distill.iterations")
    parser.add_argument("--out", default="outputs/reproduce_mnist", help="parent directory of the runs")
    parser.add_argument("overrides", nargs="*", help="extra dd-run overrides (after --)")
    args = parser.parse_args()

    console = Console()
    dataset = "dataset=mnist" if args.full else "dataset=mnist_offline"
    rows = []
    for key in (SETTINGS if args.setting == "both" else [args.setting]):
        experiment, label, paper = SETTINGS[key]
        out = Path(args.out) / experiment
        cmd = [sys.executable, "-m", "dd_runner", f"experiment={experiment}", dataset, f"output_dir={out}",
               *( [f"distill.iterations={args.iterations}"] if args.iterations else []), *args.overrides]
        console.print(f"[bold]$ {' '.join(cmd[2:])}")
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - start
        metrics = json.loads((out / "metrics.json").read_text())
        rows.append((label, paper, metrics, seconds))

    table = Table(title=f"Wang et al. 2018 on {'MNIST' if args.full else 'the offline MNIST split (train test[:7200], val test[7200:8000], test test[8000:])'}")
    for col in ("setting", "paper", "distilled", *BASELINES, "distill s", "total s"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for label, paper, m, seconds in rows:
        table.add_row(label, paper, pct(m, "test"), *(pct(m, f"baselines/{b}") for b in BASELINES),
                      f"{m['distill/seconds']:.0f}", f"{seconds:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()

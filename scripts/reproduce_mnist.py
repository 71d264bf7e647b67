"""Wang et al. 2018's two MNIST settings with dd-run, beside the baselines: one command, one table.

    python scripts/reproduce_mnist.py                          # both presets at the paper's budget, offline split
    python scripts/reproduce_mnist.py --setting fixed --iterations 2000    # CPU-sized (the lr decay follows)
    python scripts/reproduce_mnist.py --selection --seeds 3    # fixed init: the levers on the swings
    python scripts/reproduce_mnist.py --full                   # the full MNIST (downloads it)

Settings (conf/experiment/): `mnist_fixed_10` (fixed init, 10 images: 1 step x 3 epochs, 1 per class) and
`mnist_random_100` (random init, 100 images: 10 steps x 3 epochs, evaluated on 20 unseen nets), both at the
authors' outer budget (23,400 iterations, lr x0.5 every tenth of the run). Paper (full MNIST): 93.8% and
79.5 +- 8.1%. The random-init preset costs ~2 s per iteration on one CPU thread (~14 h): a GPU job at full budget.
`--selection`: what tames the swings of the fixed-init outer loop, each lever beside the plain preset at a
short budget: validation ten times per run (the plain row), every 10 iterations, every 10 with the running
average of the set (distill.average) as a second candidate, twice the real batch, a slower lr decay
(`--only KEY ...` runs some of them; `--seeds N` runs each at N seeds).

Each cell is a real `dd-run` process under outputs/reproduce/<table>/runs/; re-running continues where it
stopped. The table (Markdown and JSON) goes to outputs/reproduce/<table>/.
"""

from __future__ import annotations

import argparse
from statistics import mean, stdev

from reproduce_runs import Cell, Reproduction, pct, provenance

SETTINGS = {
    "fixed": ("mnist_fixed_10", "fixed init, 10 images", "93.8"),
    "random": ("mnist_random_100", "random init, 100 images", "79.5 ± 8.1"),
}
BASELINES = {"random_real": "random real (tuned lr)", "class_mean": "class means", "kmeans": "k-means",
             "full_data": "full data"}
PROVENANCE = ["command", "split", "budget", "wall", "machine"]


def main_table(args, rep: Reproduction, dataset: str) -> None:
    keys = list(SETTINGS) if args.setting == "both" else [args.setting]
    cells = [Cell(SETTINGS[k][0], [f"experiment={SETTINGS[k][0]}", dataset,
                                   *([f"distill.iterations={args.iterations}"] if args.iterations else []), *args.overrides],
                  {"setting": SETTINGS[k][1], "paper": SETTINGS[k][2]}) for k in keys]
    results = [r for r in map(rep.run, cells) if r]
    rows = [{**r.cell.labels, "distilled": pct(r, "test"), "kept at": str(r.get("distill/kept_iteration", "-")),
             **{label: pct(r, f"baselines/{b}") for b, label in BASELINES.items()}, **provenance(r)} for r in results]
    rep.write("Wang et al. 2018's MNIST settings: test accuracy % (random init: mean ± std over 20 unseen nets)",
              ["setting", "paper", "distilled", "kept at", *BASELINES.values(), *PROVENANCE], rows, results,
              ["Paper: full MNIST (60,000 training images); the offline split distils from 7,200."])


def selection_table(args, rep: Reproduction, dataset: str) -> None:
    iterations = args.iterations or 600
    base = ["experiment=mnist_fixed_10", dataset, f"distill.iterations={iterations}", "eval.baselines=[]",
            f"distill.lr={args.lr}", *args.overrides]
    tenth = max(1, iterations // 10)
    batch, decay = 2 * 1024, max(1, iterations // 3)
    variants = [("every10_average0.99", ["eval.every=10", "distill.average=0.99"],
                 "every 10 it., raw set or its running average (EMA 0.99)"),
                (f"every{tenth}", [f"eval.every={tenth}"], f"validation every {tenth} it. (ten checks)"),
                ("every10", ["eval.every=10"], "validation every 10 it."),
                # these two change the optimisation itself; selection as in the plain row (ten checks)
                (f"batch{batch}", [f"eval.every={tenth}", f"distill.batch_size={batch}"],
                 f"real batch {batch} (twice the preset's), ten checks"),
                (f"decay{decay}", [f"eval.every={tenth}", f"distill.decay_every={decay}"],
                 f"lr halved every {decay} it. (the preset: every {tenth}), ten checks")]
    if args.only:
        variants = [v for v in variants if v[0] in args.only]
    seeds = range(args.seeds)  # seed 0 is the preset's (its run directory has no suffix)
    groups = [[rep.run(Cell(key + (f"_seed{s}" if s else ""), base + extra + ([f"seed={s}"] if s else []),
                            {"variant": label})) for s in seeds] for key, extra, label in variants]
    rows, results = [], []
    for group in groups:
        done = [r for r in group if r]
        if not done:
            continue
        results += done
        tests = [100 * r.get("test/acc_mean") for r in done]
        rows.append({**done[0].cell.labels,
                     "test": f"{mean(tests):.1f}" + (f" ± {stdev(tests):.1f}" if len(tests) > 1 else ""),
                     "per seed": " / ".join(f"{t:.1f}" for t in tests),
                     "val (kept set)": " / ".join(pct(r, "val") for r in done),
                     "kept at": " / ".join(str(r.get("distill/kept_iteration", "-")) for r in done),
                     "kept the average": " / ".join({1.0: "yes", 0.0: "no"}.get(r.get("distill/kept_average"), "-")
                                                    for r in done), **provenance(done[0])})
    seeded = f"seeds {', '.join(map(str, seeds))} (mean ± std over seeds; the command is seed 0's, the others add seed=S)" \
        if args.seeds > 1 else "Same seed"
    rep.write(f"MNIST fixed init, 10 images: taming the swings ({iterations} iterations; test accuracy %)",
              ["variant", "test", "per seed", "val (kept set)", "kept at", "kept the average", *PROVENANCE], rows,
              results,
              [f"{seeded}. Per seed, the three selection rows follow the same optimisation and differ only in which "
               "iteration's set (or average) validation keeps; the batch and schedule rows change the optimisation "
               "and keep the plain row's selection (ten checks)."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="full MNIST (dataset=mnist) instead of the offline split")
    parser.add_argument("--setting", choices=[*SETTINGS, "both"], default="both")
    parser.add_argument("--selection", action="store_true", help="the fixed-init selection table instead")
    parser.add_argument("--iterations", type=int, help="distill.iterations (default: the preset's; --selection: 600)")
    parser.add_argument("--lr", type=float, default=0.05, help="--selection: distill.lr (a short run needs more than 0.01)")
    parser.add_argument("--only", nargs="+", help="--selection: only these rows (every10_average0.99, every60, every10, "
                        "batch2048, decay200 at 600 iterations)")
    parser.add_argument("--seeds", type=int, default=1, help="--selection: run each row at seeds 0..N-1 (the "
                        "swings make one seed's differences noise)")
    parser.add_argument("--out", default="outputs/reproduce", help="parent directory of the tables")
    parser.add_argument("--dry-run", action="store_true", help="show the table of what is finished; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra dd-run overrides (after --)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: runs each row at seeds 0..N-1, so N must be at least 1")
    dataset = "dataset=mnist" if args.full else "dataset=mnist_offline"
    name = ("mnist_selection" if args.selection else "mnist") + ("_full" if args.full else "")
    rep = Reproduction(name, args.out, dry_run=args.dry_run)
    (selection_table if args.selection else main_table)(args, rep, dataset)


if __name__ == "__main__":
    main()

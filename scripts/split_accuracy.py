"""Does a distilled image set fit the examples it was distilled from better than unseen ones? Trains the
run's evaluation networks on its set, as the run did, and measures them on the train split (the pool the
set was distilled from), the validation split (which chose the kept set) and the test split.

    python scripts/split_accuracy.py outputs/reproduce/mnist/runs/mnist_fixed_10
    python scripts/split_accuracy.py RUN_DIR --file snapshots/12000.safetensors --nets 5

A set that over-fits its pool reads higher on train than on test; a kept set chosen among many looks at
a small validation split reads higher on validation than on test. Reads the run directory's config.yaml,
so it also works for sets written before distilled.safetensors carried its config (format dd-runner/1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from dd_runner.core.device import Precision
from dd_runner.data import load_data
from dd_runner.models import build_learner
from dd_runner.models.inits import InitSampler
from dd_runner.reuse.distilled import load_distilled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished dd-run directory (image classification)")
    parser.add_argument("--file", default="distilled.safetensors", help="the set, relative to the run directory")
    parser.add_argument("--nets", type=int, default=5, help="evaluation networks (random init; fixed init has one)")
    args = parser.parse_args()
    cfg = OmegaConf.load(args.run / "config.yaml")
    if cfg.dataset.modality != "image":
        raise SystemExit("split_accuracy: image classification runs only")
    distilled = load_distilled(args.run / args.file)
    data = load_data(cfg.dataset, cfg.model)
    cpu = torch.device("cpu")
    shape = SimpleNamespace(modality="image", task="classification", name=cfg.dataset.name,
                            example_shape=tuple(distilled.data.shape[2:]), num_classes=cfg.dataset.num_classes)
    learner = build_learner(cfg.model, shape, cpu, Precision("fp32", cpu), cfg.distill)
    thetas = InitSampler(cfg.init, learner, cfg.seed).eval_nets(args.nets)  # the run's own test networks
    steps, momentum, weight_decay = distilled.schedule(cpu)
    figures = {split: [] for split in ("train", "val", "test")}
    for theta in thetas:
        trained = learner.train_on_steps(theta, steps, momentum, weight_decay)
        for split, values in figures.items():
            values.append(learner.evaluate(trained, getattr(data, split), 1024)["acc"])
    row = {split: {"acc_mean": sum(v) / len(v), "n_nets": len(v), "examples": len(getattr(data, split))}
           for split, v in figures.items()}
    for split, r in row.items():
        print(f"{split:5s} {getattr(cfg.dataset, f'{split}_split'):>16s}  {100 * r['acc_mean']:.2f}%  "
              f"({r['examples']} examples, {r['n_nets']} net(s))")
    print(json.dumps({"run": str(args.run), "file": args.file, **row}))


if __name__ == "__main__":
    main()

"""What does a distilled text set teach a pretrained model with a new head: the head, the body, or both?
Trains the run's unseen networks on the set by the run's protocol three times, each time updating only
some parameters (the rest stay at theta_0), and measures them on the test split:

- all: every parameter the run trains (the run's own figure, reproduced outside dd-run);
- head only: the parameters the init re-draws per network (the head transformers created), body frozen;
- body only: the pretrained body, the new head left as drawn.

    python scripts/frozen_parts.py outputs/reproduce/agnews/runs/random_hard --nets 10

With random heads, one step on a handful of examples moves the body along the gradient that flows back
through a random head; if the head-only row beats the all row, that movement is what the set pays for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from dd_runner.models.inits import InitSampler
from dd_runner.models.learner import sgd_update
from dd_runner.reuse import network
from dd_runner.reuse.distilled import load_distilled

PARTS = ("all", "head only", "body only")


def train_part(learner, theta, steps, momentum: float, weight_decay: float, trained: set):
    """The run's evaluation training (Learner.train_on_steps) with only the parameters in `trained` moving."""
    params = list(theta)
    index = [i for i, n in enumerate(learner.names) if n in trained]
    buffers = None
    for step in steps:
        step = step.detached()
        live = tuple(p.detach().requires_grad_(i in index) for i, p in enumerate(params))
        grads = torch.autograd.grad(learner.inner_loss(live, step), [live[i] for i in index])
        with torch.no_grad():
            moved, buffers = sgd_update(tuple(params[i] for i in index), grads, step.lr, buffers, momentum, weight_decay)
        for i, p in zip(index, moved):
            params[i] = p.detach()
    return tuple(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished dd-run directory (text classification, random or pretrained init)")
    parser.add_argument("--file", default="distilled.safetensors", help="the set, relative to the run directory")
    parser.add_argument("--nets", type=int, default=10, help="the run's first N unseen test networks")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    distilled = load_distilled(args.run / args.file)
    if distilled.metadata.get("modality") != "text" or distilled.metadata.get("task") == "language_modeling":
        raise SystemExit("frozen_parts: text classification runs only (a pretrained body with a new head)")
    cfg = OmegaConf.load(args.run / "config.yaml")
    module = distilled.model()
    learner = network.learner_for(module, distilled.metadata)
    head = set(learner.redrawn)
    if not head:
        raise SystemExit("frozen_parts: this model has no re-drawn head (init=fixed, or pretrained without resample)")
    trainable = set(learner.names)
    parts = {"all": trainable, "head only": head & trainable, "body only": trainable - head}
    thetas = InitSampler(cfg.init, learner, cfg.seed).eval_nets(args.nets)  # the run's own test networks
    steps, momentum, weight_decay = distilled.schedule(learner.device)
    test = distilled.test_data()
    batch = int(cfg.eval.batch_size)
    rows = {}
    for part in args.parts:
        start, accs = time.time(), []
        for theta in thetas:
            trained = train_part(learner, theta, steps, momentum, weight_decay, parts[part])
            accs.append(learner.evaluate(trained, test, batch)["acc"])
        rows[part] = {"acc_mean": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "accs": accs,
                      "parameters": sum(learner.module.get_parameter(n).numel() for n in parts[part])}
        print(f"{part:10s} {100 * rows[part]['acc_mean']:5.1f} +- {100 * rows[part]['acc_std']:.1f}%  "
              f"({len(accs)} nets, {rows[part]['parameters']:,} parameters trained, {time.time() - start:.0f} s)", flush=True)
    run_figure = json.loads((args.run / "metrics.json").read_text()) if (args.run / "metrics.json").is_file() else {}
    print(json.dumps({"run": str(args.run), "file": args.file, "nets": args.nets, "test_examples": len(test),
                      "run_test_acc_mean": run_figure.get("test/acc_mean"), **rows}))


if __name__ == "__main__":
    main()

"""Does a run's distilled set give its reported figures through the public API alone?

    python scripts/reuse_check.py RUN_DIR [--nets N]

Loads RUN_DIR/distilled.safetensors with `dd_runner.load_distilled`, trains the run's own evaluation
networks (`model(net=i)`, and `model(arch=...)` for every eval.models column) with `train()` and measures
them with `evaluate()` on `test_data()`, then prints each column's per-network accuracies beside the
figures in metrics.json and whether they are equal. Random-init nets evaluated together under vmap (on a
GPU, or a LeNet / MLP on a CPU) may differ from the reloaded ones in a few test examples (floating-point
summation order); networks evaluated one at a time agree exactly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import List, Optional


def column(d, test, arch: Optional[str], nets: int) -> List[float]:
    return [d.evaluate(d.train(d.model(net=i, arch=arch)), test)["acc"] for i in range(nets)]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished dd-run run directory")
    parser.add_argument("--nets", type=int, default=None, help="networks per column (default: the run's eval.nets)")
    args = parser.parse_args(argv)

    from dd_runner import load_distilled
    from dd_runner.core.errors import DDError

    try:
        d = load_distilled(args.run_dir / "distilled.safetensors")
        metrics = json.loads((args.run_dir / "metrics.json").read_text())
        test = d.test_data()
    except (DDError, OSError, ValueError) as e:
        print(f"reuse_check: error: {e}", file=sys.stderr)
        return 2
    fixed = d.protocol.get("nets_drawn") == "theta_0"
    own = d.config["model"]["name"]
    print(f"{args.run_dir}: {d.config['method']['name']}, {own}, init={d.config['init']['mode']}, "
          f"eval.schedule={d.protocol['schedule']}, eval.augment={d.protocol.get('augment', {}).get('name')}")
    all_equal = True
    for arch in [None, *d.protocol.get("models", {})]:
        prefix = "test" if arch is None else f"test/{arch}"
        nets = 1 if fixed and arch is None else (args.nets or int(metrics.get(f"{prefix}/n_nets", d.protocol["nets"])))
        accs = column(d, test, arch, nets)
        mean = statistics.fmean(accs)
        reported = metrics[f"{prefix}/acc_mean"]
        equal = mean == reported and nets == metrics.get(f"{prefix}/n_nets", nets)
        all_equal &= equal
        lr = d.evaluation_lr(arch)
        print(f"  {arch or own}: lr {'learned' if lr is None else f'{lr:g}'}; reloaded nets "
              f"{', '.join(f'{a:.4f}' for a in accs)} -> mean {mean:.4f}; metrics.json {prefix}/acc_mean "
              f"{reported:.4f}: {'equal' if equal else f'differs by {mean - reported:+.4f}'}")
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())

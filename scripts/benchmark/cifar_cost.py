"""What a CIFAR-10 preset costs on this device, from a short run of each on CIFAR-shaped images.

The time of an outer iteration and of an evaluation network depends on the images' shape and count, not on
what they show, so the runs read a generated folder of 3x32x32 PNGs (a GPU machine without network cannot
download CIFAR-10): `dd-run experiment=cifar10_<method>_10 dataset=image_folder dataset.root=<folder>`
for a few iterations and one evaluation network, then projects the preset's own budget (its
distill.iterations and eval.nets) from the measured seconds per iteration and per network. Validation
checks are not counted (their number is eval.every's choice)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

PRESETS = ("cifar10_distribution_10", "cifar10_gradient_10", "cifar10_performance_10")


def cifar_shaped_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    """10 class folders of per_class random 32x32 RGB PNGs (written once)."""
    import numpy as np
    from PIL import Image

    if (root / "9" / f"{per_class - 1}.png").exists():
        return root
    rng = np.random.default_rng(seed)
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / str(c) / f"{i}.png")
    return root


def preset_budget(preset: str) -> Dict[str, int]:
    from hydra import compose, initialize_config_module

    import dd_runner.config  # noqa: F401  (the schemas)

    with initialize_config_module("dd_runner.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}"])
    return {"iterations": int(cfg.distill.iterations), "nets": int(cfg.eval.nets)}


def cifar_cost(dd_run: Callable, work: Path, budget: float, tiny: bool, per_class: Optional[int] = None) -> dict:
    """dd_run(name, overrides, budget) -> run figures (gpu_check's Check.dd_run); per_class images of each
    class in the generated folder (default 300, at toy sizes 40)."""
    folder = cifar_shaped_folder(work / "cifar_shaped", per_class or (40 if tiny else 300))
    iterations = 2 if tiny else 20
    runs, headline, status = {}, {}, "ok"
    for preset in PRESETS:
        full = preset_budget(preset)
        overrides = [f"experiment={preset}", "dataset=image_folder", f"dataset.root={folder}",
                     f"distill.iterations={iterations}", "eval.every=0", "eval.nets=1", "eval.val_nets=1"]
        if tiny and "performance" not in preset:  # toy sizes: the figures then project nothing
            overrides += ["eval.train_epochs=2", "method.batch_real=16"]
        run = dd_run(preset, overrides, budget / len(PRESETS))
        s_it, s_net = run.get("distill/seconds_per_iteration"), run.get("eval/seconds")
        run["budget"] = full
        run["projected_seconds"] = (s_it * full["iterations"] + s_net * full["nets"]) if s_it and s_net and not tiny else None
        runs[preset] = run
        status = status if run["status"] == "ok" else run["status"]
        short = preset.removeprefix("cifar10_")
        headline.update({f"{short} s/it": s_it, f"{short} s/eval net": s_net,
                         f"{short} projected h": run["projected_seconds"] / 3600 if run["projected_seconds"] else None})
    return {"status": status, "runs": runs, "headline": headline}

"""`scripts/gpu_check.py --pack`: what a GPU machine without network needs besides the wheels, in one
ignored folder of the checkout (default .gpu/) that travels with it: the offline data of ../shared/data and
the pretrained MiniLM stand-in with its weights stored in fp16 (45 MB instead of 90: it must fit, with the
wheels and the checkout, into the 64 MiB a device call carries; dd-run loads every checkpoint as fp32)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARRY_LIMIT_MB = 64 * 1.048576  # 64 MiB


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def ignore_in_git(folder: str) -> None:
    """Add /folder/ to this checkout's info/exclude (a worktree's own git directory included)."""
    exclude = Path(subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=REPO, text=True,
                                  capture_output=True, check=True).stdout.strip())
    exclude = exclude if exclude.is_absolute() else REPO / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if f"/{folder}/" not in lines:
        exclude.write_text("\n".join(lines + [f"/{folder}/"]) + "\n")


def half_precision_copy(source: Path, target: Path) -> None:
    """The model folder with model.safetensors in fp16 (config, tokenizer and vocabulary unchanged)."""
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy2(f, target / f.name)
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(source / "model.safetensors").items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, target / "model.safetensors", metadata={"format": "pt"})


def pack(folder: Path, data: Path, minilm: Path, wheels: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve().parent == REPO:
        ignore_in_git(folder.name)
    for name in ("mnist", "ag_news", "english_quotes"):
        if (data / name).exists() and not (folder / "data" / name).exists():
            shutil.copytree(data / name, folder / "data" / name)
    if minilm and minilm.exists() and not (folder / "minilm" / "model.safetensors").exists():
        half_precision_copy(minilm, folder / "minilm")
    dropped = [w for w in wheels.glob("wandb-*.whl")]  # every run of the check uses logger=none
    for w in dropped:
        w.unlink()
    total = folder_mb(folder) + folder_mb(wheels)
    print(f"packed {folder} ({folder_mb(folder):.1f} MB: data, MiniLM in fp16) beside {wheels} "
          f"({folder_mb(wheels):.1f} MB{'; dropped the wandb wheel, not needed with logger=none' if dropped else ''})"
          f": {total:.1f} MB of the {CARRY_LIMIT_MB:.0f} MB a device call carries with the checkout")
    if total > CARRY_LIMIT_MB - 2:
        print("warning: that leaves too little room for the checkout itself")

"""`dd-export RUN_DIR --to DIR [--push-to-hub REPO]`: a finished run's distilled set as a Hugging Face
`datasets` folder (parquet + dataset card), loadable with `datasets.load_dataset(DIR)`; `--format dc --to
FILE`: a .pt file for Zhao et al.'s DatasetCondensation evaluator (reuse/dc_format.py).

A row per synthetic example, in training order: images as `Image` (normalisation undone, 8-bit), or text
as input embeddings plus their nearest vocabulary tokens; the class, the label distribution trained on,
the step it belongs to and the learned lr of that step in every epoch. The folder also carries
`distilled.safetensors` (and `init.safetensors`), so `load_distilled` reproduces the run's figure from it.

The folder is built beside DIR and renamed into place: it exists complete or not at all. Bad input (an
unfinished or foreign run directory, a push without token or network) is one line, exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import torch

from dd_runner.core.errors import DataError, DDError, RunError
from dd_runner.core.files import _umask, read_json, write_failure

PARQUET = "data/train-00000-of-00001.parquet"


def check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise DataError(f"{run_dir} is not a directory: give a dd-run run directory (outputs/runs/<date>/<time>)")
    if not (run_dir / "distilled.safetensors").is_file():
        raise DataError(f"{run_dir} holds no distilled.safetensors: not a dd-run distillation run directory")
    if not (run_dir / "metrics.json").is_file():
        raise DataError(f"{run_dir} is unfinished (no metrics.json): finish it with `dd-run resume={run_dir}` first")


def image_rows(d) -> Dict[str, list]:
    from PIL import Image

    from dd_runner.data import zca

    pixels = zca.to_pixels(d.data, d.normalisation, zca.from_tensors(d.extras))  # whitening or mean / std undone
    images = (pixels * 255).round().to(torch.uint8)
    pictures = []
    for x in images.flatten(0, 1):
        array = x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()
        pictures.append(Image.fromarray(array))
    return {"image": pictures}


def text_rows(d, run_dir: Path) -> Dict[str, list]:
    """Embeddings, and the nearest tokens the run wrote in distilled_text.csv (one row per sequence)."""
    view = run_dir / "distilled_text.csv"
    with open(view, newline="") as f:
        nearest = [row["nearest_tokens"] for row in csv.DictReader(f)] if view.is_file() else []
    embeddings = [x.tolist() for x in d.data.float().flatten(0, 1)]
    return {"inputs_embeds": embeddings, "nearest_tokens": nearest or [""] * len(embeddings)}


def build_table(d, run_dir: Path):
    """The `datasets.Dataset` of a loaded DistilledSet."""
    from datasets import ClassLabel, Dataset, Features, Image, Sequence, Value

    steps, per_step = d.data.shape[:2]
    lrs = d.lrs.float().view(d.epochs, steps)
    names = json.loads(d.metadata.get("class_names", "[]"))
    lm = d.metadata.get("task") == "language_modeling"
    columns = image_rows(d) if d.metadata.get("modality", "image") == "image" else text_rows(d, run_dir)
    columns.update(step=[s for s in range(steps) for _ in range(per_step)],
                   slot=[j for _ in range(steps) for j in range(per_step)],
                   lrs=[lrs[:, s].tolist() for s in range(steps) for _ in range(per_step)])
    features = {"step": Value("int32"), "slot": Value("int32"), "lrs": Sequence(Value("float32"))}
    targets = d.targets.float().flatten(0, 1)
    if lm:  # per position: the most likely next token (the full distribution is vocabulary-sized)
        columns["target_tokens"] = targets.argmax(-1).tolist()
        features["target_tokens"] = Sequence(Value("int64"))
    else:
        columns["label"] = [int(c) for _ in range(steps) for c in d.classes]
        columns["label_distribution"] = targets.tolist()
        features.update(label=ClassLabel(names=names) if names else Value("int64"),
                        label_distribution=Sequence(Value("float32")))
    if "image" in columns:
        features["image"] = Image()
    else:
        features.update(inputs_embeds=Sequence(Sequence(Value("float32"))), nearest_tokens=Value("string"))
    return Dataset.from_dict(columns, features=Features({k: features[k] for k in columns}))


def card(d, metrics: Dict[str, float], rows: int, repo: str = "") -> str:
    """README.md: a YAML header (source dataset, model, method, init, budget, metrics) and how to train on it."""
    cfg = d.config
    modality = d.metadata.get("modality", "image")
    task = {"image": "image-classification", "text": "text-classification"}[modality]
    if d.metadata.get("task") == "language_modeling":
        task = "text-generation"
    header = {
        "pretty_name": f"Distilled {cfg['dataset']['name']} ({cfg['method']['name']}, {cfg['model']['name']})",
        "tags": ["dataset-distillation", "dd-runner", "synthetic"], "task_categories": [task],
        "size_categories": ["n<1K" if rows < 1000 else "1K<n<10K"], "source_datasets": [cfg["dataset"]["name"]],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
        "dd_runner": {"source_dataset": cfg["dataset"]["name"], "model": cfg["model"]["name"],
                      "method": cfg["method"]["name"], "init": cfg["init"]["mode"], "labels": cfg["labels"]["type"],
                      "budget": {"steps": int(d.metadata["steps"]), "epochs": d.epochs, "ipc": int(d.metadata["ipc"]),
                                 "examples": rows},
                      "metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith(("test/", "val/", "baselines/"))
                                  and isinstance(v, (int, float))},
                      "provenance": d.provenance, "config_hash": d.metadata.get("config_hash", "")},
    }
    import yaml

    figure = metrics.get("test/acc_mean")
    source = repo or "<this folder>"
    where = f'snapshot_download("{repo}", repo_type="dataset")' if repo else '"<this folder>"'
    body = f"""
# {header['pretty_name']}

{rows} synthetic examples distilled from {cfg['dataset']['name']} for {cfg['model']['name']} with dd-runner
({cfg['method']['name']}, init={cfg['init']['mode']}, labels={cfg['labels']['type']}):
{d.metadata['steps']} steps x {d.epochs} epochs, test accuracy {figure if figure is not None else 'n/a'}.
A row per example in training order: `step`, the learned lr of that step in each epoch (`lrs`), the class
(`label`) and the label distribution trained on.

## Train on it with dd-runner (reproduces the figure)

```python
from huggingface_hub import snapshot_download
from dd_runner import load_distilled

d = load_distilled({where} + "/distilled.safetensors")
net = d.model()                      # the network it was distilled for, at its initial weights
d.train(net)                         # the run's protocol (learned lrs, epochs)
print(d.evaluate(net, d.test_data())["acc"])
```

## Train on it with plain PyTorch

```python
import torch, torch.nn.functional as F
from datasets import load_dataset

ds = load_dataset({source!r}, split="train").with_format("torch")
steps = int(ds["step"].max()) + 1
epochs = len(ds[0]["lrs"])
for epoch in range(epochs):
    for s in range(steps):
        batch = ds.filter(lambda r: r["step"] == s)
        x = ...  # images: normalise as the model expects ({d.normalisation}); text: batch["inputs_embeds"]
        loss = -(batch["label_distribution"] * F.log_softmax(model(x), -1)).sum(-1).mean()
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= batch["lrs"][0][epoch] * g
```
"""
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n" + body


def export(run_dir: Path, to: Path, repo: str = "") -> Path:
    """Write the folder (complete, or not at all); `repo`: the Hub repository it will be pushed to (for the card)."""
    from dd_runner.reuse.distilled import load_distilled

    run_dir, to = Path(run_dir), Path(to)
    check_run_dir(run_dir)
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise DataError(f"--to {to} exists and is not empty: choose a new directory")
    d = load_distilled(run_dir / "distilled.safetensors")
    if "config" not in d.metadata:
        raise DataError(f"{run_dir}/distilled.safetensors predates self-contained sets (no config in its header): re-run it")
    metrics = read_json(run_dir / "metrics.json", hint=f"delete it and finish the run from its last checkpoint with dd-run resume={run_dir}")
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{to.name}.", dir=to.parent))
    except OSError as e:
        raise RunError(f"cannot write --to {to}: {write_failure(e, '--to directory')}") from None
    try:
        import datasets

        datasets.disable_progress_bars()
        table = build_table(d, run_dir)
        (staging / "data").mkdir()
        table.to_parquet(str(staging / PARQUET))
        (staging / "README.md").write_text(card(d, metrics, len(table), repo))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; an export is an ordinary folder
        for name in ("distilled.safetensors", "init.safetensors", "images.png", "evolution.png"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staging / name)
        if to.exists():
            to.rmdir()
        staging.rename(to)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return to


def export_dc(run_dir: Path, to: Path) -> Path:
    """`--format dc`: DistilledSet.to_dc() as one torch.save file (plain tensors, numbers and dicts, readable
    with torch.load(weights_only=True)) for Zhao et al.'s DatasetCondensation evaluator; written atomically."""
    import io

    from dd_runner.core.files import atomic_write_bytes
    from dd_runner.reuse.distilled import load_distilled

    run_dir, to = Path(run_dir), Path(to)
    check_run_dir(run_dir)
    if to.exists():
        raise DataError(f"--to {to} exists: choose a new file")
    payload = io.BytesIO()
    torch.save(load_distilled(run_dir / "distilled.safetensors").to_dc(), payload)
    atomic_write_bytes(to, payload.getvalue())
    return to


def push(folder: Path, repo: str, private: bool = False) -> str:
    """Upload the folder as a dataset repository; needs a token and the network (one line if either lacks)."""
    from huggingface_hub import HfApi, get_token

    if not get_token():
        raise DataError("--push-to-hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN "
                        f"(the export in {folder} is complete; push it later)")
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset")
    except Exception as e:  # no network, refused token, unknown namespace: say which, in one line
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot push to the Hugging Face Hub dataset {repo} ({type(e).__name__}: {reason}); "
                        f"pushing needs the network and a token with write access (the export in {folder} is complete)") from None
    return f"https://huggingface.co/datasets/{repo}"


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(prog="dd-export", description="Export a finished dd-run run's distilled set "
                                     "as a Hugging Face datasets folder (parquet + dataset card).")
    parser.add_argument("run_dir", type=Path, help="a finished run directory (holds distilled.safetensors, metrics.json)")
    parser.add_argument("--to", type=Path, required=True, help="the folder to write (new or empty); with "
                        "--format dc the .pt file to write (new)")
    parser.add_argument("--format", choices=("datasets", "dc"), default="datasets",
                        help="datasets: a Hugging Face datasets folder (default); dc: a .pt file for the "
                        "DatasetCondensation evaluator (image_syn, label_syn, args; see DistilledSet.to_dc)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also upload it as the dataset repository REPO (user/name)")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: a private repository")
    args = parser.parse_args(argv)
    try:
        if args.format == "dc":
            if args.push_to_hub:
                raise DataError("--push-to-hub uploads a datasets folder: leave it out with --format dc")
            print(f"wrote {export_dc(args.run_dir, args.to)} (torch.load it; DC's evaluate_synset takes "
                  "image_syn, label_syn and args)")
            return 0
        folder = export(args.run_dir, args.to, args.push_to_hub or "")
        print(f"wrote {folder} (load it with datasets.load_dataset('{folder}'))")
        if args.push_to_hub:
            print(f"pushed: {push(folder, args.push_to_hub, args.private)}")
    except DDError as e:
        print(f"dd-export: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the --to folder's file system filled up or turned read-only while writing
        print(f"dd-export: error: cannot write --to {args.to}: {write_failure(e, '--to directory')}", file=sys.stderr)
        return RunError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

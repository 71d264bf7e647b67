"""How the set evolved: at every validation point `snapshots/<iteration>.safetensors` (the set as it was,
its validation accuracy in the header), the same view on W&B under one key (`distilled/evolution`: an
image grid, or for text a nearest-token table) so the media panel's slider replays the distillation, and
at the end `evolution.png`: a row per point with its validation accuracy, the kept one marked.

`eval.snapshots=false` turns it off. evolution.png is drawn from the files on disk, so a resumed run
(which rewrites the points after its checkpoint identically) gets the whole history.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from dd_runner.core import distributed
from dd_runner.data import zca
from dd_runner.runtime.artefacts import save_distilled
from dd_runner.runtime.portable import portable_metadata

SNAPSHOTS = "snapshots"
MEDIA_KEY = "distilled/evolution"
MAX_SHOWN = 20  # examples per row of evolution.png and of the W&B grid


def display_images(x: torch.Tensor, data, limit: int = MAX_SHOWN) -> torch.Tensor:
    """The first `limit` images of a set's data (steps, n, C, H, W) in [0, 1] (normalisation or whitening
    undone, as in images.png)."""
    return zca.to_pixels(x.detach().flatten(0, 1)[:limit], data.normalisation, getattr(data, "whitening", {}))


def image_row(images: torch.Tensor) -> "numpy.ndarray":  # noqa: F821
    """One strip of images with 2-pixel white gaps, as an (H, W, 3) uint8 array (no torchvision import:
    this runs at every validation point)."""
    import torch.nn.functional as F

    rgb = images if images.shape[1] == 3 else images[:, :1].expand(-1, 3, -1, -1)
    padded = F.pad(rgb, (1, 1, 2, 2), value=1.0)  # 2 px above and below, 1 px each side: 2 px between images
    strip = F.pad(torch.cat(list(padded), dim=2), (1, 1), value=1.0)
    return (strip.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


class Snapshots:
    def __init__(self, cfg, out: Path, data, learner, tracker):
        self.cfg, self.dir, self.data, self.learner, self.tracker = cfg, Path(out) / SNAPSHOTS, data, learner, tracker
        self.meta = portable_metadata(cfg)  # the header every snapshot shares (config, protocol, provenance)

    def record(self, iteration: int, synth, val_acc: float) -> None:
        if not distributed.is_main():
            return
        extra = {"iteration": str(iteration), "val_acc": repr(float(val_acc)), **self.meta}
        save_distilled(self.dir / f"{iteration}.safetensors", self.cfg, self.data, synth, extra=extra)
        caption = f"iteration {iteration}: val acc {val_acc:.4f}"
        if self.data.modality == "image":
            self.tracker.log_image(MEDIA_KEY, image_row(display_images(synth.data, self.data)), caption=caption, step=iteration)
        elif self.data.modality == "text":
            from dd_runner.synthetic.text_view import text_view_rows

            columns, rows = text_view_rows(synth, self.learner, self.data)
            self.tracker.log_table(MEDIA_KEY, ["iteration", "val_acc", *columns],
                                   [[iteration, float(val_acc), *r] for r in rows], step=iteration)


def saved_points(directory: Path) -> List[Tuple[int, Path]]:
    points = [(int(p.stem), p) for p in Path(directory).glob("*.safetensors") if re.fullmatch(r"\d+", p.stem)]
    return sorted(points)


def write_evolution(out: Path, data, learner, kept_iteration: Optional[int]) -> Optional[Path]:
    """evolution.png from the snapshots on disk: a row per validation point, labelled with its iteration
    and validation accuracy; the kept set's row is marked. None when there are no snapshots."""
    from dd_runner.reuse.distilled import load_distilled

    points = saved_points(Path(out) / SNAPSHOTS)
    if not points or not distributed.is_main():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [(it, load_distilled(p)) for it, p in points]
    labels = [(f"it {it}  val {float(d.metadata['val_acc']):.3f}" + ("  KEPT" if it == kept_iteration else ""),
               it == kept_iteration) for it, d in sets]
    if data.modality == "text":
        fig, ax = plt.subplots(figsize=(12, 0.3 * len(sets) + 0.4))
        ax.axis("off")
        for i, ((label, kept), (_, d)) in enumerate(zip(labels, sets)):
            ax.text(0.0, 1 - (i + 0.5) / len(sets), f"{label}  |  {nearest_line(d, learner, data)}", fontsize=7,
                    va="center", family="monospace", color="red" if kept else "black", transform=ax.transAxes)
    else:  # one mosaic, a strip per point: one imshow (a subplot per row is slow at many points)
        strips = [image_row(display_images(d.data, data)) for _, d in sets]
        height = strips[0].shape[0]
        mosaic = np.concatenate(strips, axis=0)
        fig, ax = plt.subplots(figsize=(mosaic.shape[1] / 40 + 1.6, mosaic.shape[0] / 40 + 0.2))
        ax.imshow(mosaic)
        ax.set_xticks([]), ax.set_yticks([])
        for i, (label, kept) in enumerate(labels):
            ax.text(-4, (i + 0.5) * height, label.replace("  val", "\nval").replace("  KEPT", "\nKEPT"), ha="right",
                    va="center", fontsize=7, color="red" if kept else "black")
            if kept:
                ax.add_patch(plt.Rectangle((0, i * height), mosaic.shape[1] - 1, height - 1, fill=False, color="red", lw=2))
    fig.tight_layout()
    path = Path(out) / "evolution.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def nearest_line(d, learner, data, tokens: int = 16) -> str:
    """The nearest vocabulary tokens of the first synthetic sequence (text sets)."""
    from dd_runner.synthetic.text_view import nearest_tokens, tokens_text

    ids, _ = nearest_tokens(d.data[0, 0, :tokens], learner.embedding.cpu())
    return tokens_text(data.tokenizer, ids)

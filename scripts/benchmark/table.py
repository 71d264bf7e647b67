"""Ratios against the reference rows measured in the same run, and the printed table."""

from __future__ import annotations

from benchmark.memory import bf16_peak_tflops

def add_ratios(results: list, clock: str) -> None:
    """Each engine row against sequential unroll of the same model, T, nets and precision (bf16 rows
    also against the same engine in fp32); vmap evaluation against the loop. `clock`: wall seconds, or
    the process's CPU seconds (less disturbed by other processes on a shared CPU; use --threads 1)."""
    from benchmark.artefacts import artefact_ratios

    key = "seconds" if clock == "wall" else "cpu_seconds"
    artefact_ratios(results, key)
    done = [r for r in results if "seconds" in r and r["kind"] != "run"]

    def shape(r, precision, engine, ref=None, allocator=None):
        return (r["section"], r["model"], r["T"], r["nets"], r.get("init"), precision, engine, tuple(r["overrides"]),
                ref if ref is not None else r.get("ref"), allocator or r.get("allocator"))

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
            base = engines.get(shape(r, r["precision"], "unroll"))
            base = None if base is r else base
            fp32 = engines.get(shape(r, "fp32", r["engine"]))
            if r["precision"] == "bf16" and fp32:
                r["bf16_speedup"] = fp32[key] / r[key]
            before = None if r.get("ref") else engines.get(shape(r, r["precision"], r["engine"], r.get("against"), "system"))
            if before:  # the same case measured with dd_runner at an earlier commit (bench.py --against)
                r["vs_ref"] = {"ops": before.get("ops"), "cpu_seconds": before[key], "ref": before["ref"]}
                r["note"] = (f"{before['ref']}: {before.get('ops', 0):,} ops, {before[key]:.3f} s; "
                             f"{before.get('ops', 0) / max(1, r.get('ops', 1)):.2f}x fewer ops, {before[key] / r[key]:.2f}x faster")
        if r.get("flops"):  # achieved model FLOP/s of the outer step, and its share of the bf16 peak
            r["tflops"] = r["flops"] / r["seconds"] / 1e12
            peak = bf16_peak_tflops(r.get("device_name", ""))
            r["mfu"] = r["tflops"] / peak if peak else None
        if base:
            r["speedup"] = base[key] / r[key]
            if r.get("peak_mb") and base.get("peak_mb"):
                r["memory_ratio"] = r["peak_mb"] / base["peak_mb"]


def describe(r: dict) -> tuple:
    if r["kind"] == "run":
        from benchmark.artefacts import describe_run

        return describe_run(r)
    if "skipped" in r and r["kind"] == "engine":
        return r["section"], r["model"], "unroll, recompute x fp32, bf16", "T in 1, 3, 10"
    if r["kind"] == "engine":
        knobs = [o.split(".")[-1] for o in r.get("overrides", []) if not o.startswith("model.tokenizer=")]
        if r["section"] == "step":
            knobs += [f"init={r.get('init')}", f"malloc={r.get('allocator')}"] + ([f"@{r['ref']}"] if r.get("ref") else [])
        what = " ".join([r["engine"], r["precision"], *knobs])
        shape = f"T={r['T']} nets={r['nets']}"
    elif r["kind"] == "captured":
        what, shape = f"{r['engine']} captured vs eager (init={r['init']})", f"T={r['T']} nets={r['nets']}"
    elif r["kind"] == "eval":
        what, shape = f"eval {r['mode']} {r['precision']}", f"{r['nets']} nets, 100 images x 3 epochs"
    else:
        inner = " (inner weights bf16)" if r.get("inner") == "bf16" else ""
        what, shape = f"meta-grad cosine bf16 vs fp32{inner}", f"T={r['T']} nets={r['nets']}"
    return r["section"], r["model"], what, shape


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("section", "model", "what", "size", "s/step", "cpu s", "x unroll", "peak MB", "mem / unroll",
                "ops/step", "faults/step", "note"):
        table.add_column(col, justify="left" if col in ("section", "model", "what", "size", "note") else "right")
    for r in results:
        note = r.get("skipped") or r.get("error") or r.get("note", "")
        if r["kind"] == "cosine" and "cosine" in r:
            note = f"cosine {r['cosine']:.4f}" + (f"; fp32: {r['ops_fp32']:,} ops" if "ops_fp32" in r else "")
        if r["kind"] == "captured" and "rel_l2" in r:
            how = "replayed" if r["captured"] else "static buffers, eager (no CUDA graph)"
            note = (f"{how}: {r['eager_seconds'] / r['seconds']:.2f}x eager ({r['eager_seconds']:.4f} s); "
                    f"meta-gradient rel. L2 {r['rel_l2']:.1e}")
        if "bf16_speedup" in r:
            note = f"{r['bf16_speedup']:.2f}x the same engine in fp32"
        if "tflops" in r:
            mfu = f", MFU {100 * r['mfu']:.1f}% of bf16 peak" if r.get("mfu") is not None else ""
            note = "; ".join(filter(None, [note, f"{r['tflops']:.2f} TFLOP/s{mfu}"]))
        table.add_row(*describe(r), fmt(r.get("seconds"), ".3f"), fmt(r.get("cpu_seconds"), ".3f"),
                      fmt(r.get("speedup"), ".2f"),
                      fmt(r.get("peak_mb"), ".1f"), fmt(r.get("memory_ratio"), ".2f"), fmt(r.get("ops"), ","),
                      fmt(r.get("faults_per_step"), ",.0f"), note)
    Console(width=200).print(table)
    for r in results:  # where the operations of a step go: operators, and the autograd nodes that ran them
        if r.get("op_table"):
            operators = ", ".join(f"{name} {count:,}" for name, count in r["op_table"][:8])
            nodes = ", ".join(f"{name} {count:,}" for name, count in r.get("op_nodes", [])[:6])
            print(f"{r['model']} {' '.join(describe(r)[2:])}: {r['ops']:,} ops; operators: {operators}"
                  + (f"; by autograd node: {nodes}" if nodes else ""))

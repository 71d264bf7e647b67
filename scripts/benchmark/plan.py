"""The benchmark's cases: dd-run overrides per model, and the list of cases a run of scripts/bench.py measures."""

from __future__ import annotations

from dd_runner.data.hub import minilm_stand_in

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
# The depth of the base models at a width of 64: the same ATen operations per step (the count follows layers
# and steps, not width), measured in seconds on a CPU instead of minutes.
MODEL_CASES["distilbert-6x64"] = TEXT_CLS + ["+model.config_overrides={n_layers: 6, dim: 64, hidden_dim: 128, n_heads: 2}"]
MODEL_CASES["gpt_neo-12x64"] = TEXT_LM + ["+model.config_overrides={hidden_size: 64, num_layers: 12, num_heads: 2, "
                                          "attention_types: [[[global, local], 6]]}"]
TRANSFORMERS = ["distilbert-tiny", "distilbert-base", "gpt_neo-tiny", "gpt_neo-base", "distilbert-6x64", "gpt_neo-12x64"]
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
    if getattr(args, "gpu", False):
        return finish(gpu_plan(args), args)
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
        for model in (TRANSFORMERS[0], TRANSFORMERS[2]) if quick else TRANSFORMERS[:4]:
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
            if model == "gpt_neo-base":  # the language-model memory shape: many short steps of few sequences
                for precision in ("fp32", "bf16"):
                    for engine in ("unroll", "recompute"):
                        cases.append(dict(section="transformers", kind="engine", model=model, engine=engine, T=20,
                                          nets=1, precision=precision, batch=32,
                                          overrides=["distill.ipc=4", "distill.seq_len=16"]))
    if "step" in args.only:
        cases += step_cases(quick, getattr(args, "against", None))
    if "captured" in args.only:
        from benchmark.captured import captured_cases

        cases += captured_cases(quick)
    if "artefacts" in args.only:
        from benchmark.artefacts import artefact_cases

        cases += artefact_cases(args.quick)
    return finish(cases, args)


def step_cases(quick: bool, against: str = None) -> list:
    """The `step` section: what one outer step costs the host (ATen operations, minor page faults, process
    CPU time) at the shapes of the GPU check: LeNet with MNIST fixed init (experiment=mnist_fixed_10: 1 step
    x 3 epochs, real batch 1,024) with the default allocator and the system one, and random init with 100
    images (4 nets x 30 steps, unroll and vmap); DistilBERT at depth 6 and GPT-Neo at depth 12 (the base
    models' depths at width 64: the same operations) at T=3, 4 synthetic sequences, 64 real articles, fp32
    and bf16. --against REF adds each case measured with dd_runner at commit REF (benchmark/against.py)."""
    fixed = dict(model="lenet", init="fixed", steps=1, T=3, nets=1, batch=256 if quick else 1024)
    shapes = [dict(fixed, engine="unroll", allocator="auto"), dict(fixed, engine="unroll", allocator="system"),
              dict(fixed, engine="recompute", allocator="auto")]
    if not quick:
        shapes += [dict(model="lenet", init="random", steps=10, T=30, nets=4, batch=1024, engine=engine)
                   for engine in ("unroll", "vmap")]
    for model in ("distilbert-6x64", "gpt_neo-12x64"):
        missing = unavailable(model)
        shapes += [dict(model=model, T=1 if quick else 3, nets=1, batch=16 if quick else 64, engine="unroll",
                        precision=precision, skipped=f"skipped: {missing}" if missing else None)
                   for precision in ("fp32", "bf16")]
    cases = []
    if minilm_stand_in():  # bf16 autocast vs bf16 inner weights: operations and meta-gradient cosine
        for inner in ("autocast", "bf16"):
            cases.append(dict(section="step", kind="cosine", model=PRETRAINED, engine="unroll", T=1 if quick else 3,
                              nets=1, batch=8 if quick else 64, inner=inner,
                              overrides=[f"model.name_or_path={minilm_stand_in()}"]))
    for shape in shapes:
        defaults = dict(section="step", kind="engine", init="random", precision="fp32", overrides=[], ops=True,
                        allocator="auto")
        case = {**defaults, **{k: v for k, v in shape.items() if v is not None}}
        if against:
            case["against"] = against
        if against and "skipped" not in case and case["allocator"] == "auto":  # (its system twin: the same)
            cases.append(dict(case, ref=against, allocator="system"))
        cases.append(case)
    return cases


def finish(cases: list, args) -> list:
    """Settings every case shares: device, threads, repeats, the offline tokenizer of random-weight models."""
    for case in cases:
        case.update(device=args.device, threads=args.threads, repeats=args.repeats or (1 if args.quick else 3))
        if case["model"] in TRANSFORMERS and args.tokenizer and "skipped" not in case:
            case["overrides"] = case.get("overrides", []) + [f"model.tokenizer={args.tokenizer}"]
    return cases


def gpu_plan(args) -> list:
    """The cases the GPU run book (scripts/gpu_check.py) measures against its targets, the most telling
    first (a time budget may cut the tail): the bf16 cosine of the pretrained MiniLM and of LeNet;
    DistilBERT-base and GPT-Neo-125M shapes at T=3, unroll fp32 / bf16 and recompute bf16, with their model
    FLOPs (achieved FLOP/s, and the share of the device's bf16 peak); evaluation of 100 nets, loop vs
    vmap; the loop vs vmap with 32 nets at T in {10, 30, 100}, and with 1 and 8 at T=10.
    --quick: the same kinds of case at toy sizes (CPU, CI)."""
    quick = args.quick
    batch = 256 if quick else 1024
    cases = []
    if minilm_stand_in():
        cases.append(dict(section="amp", kind="cosine", model=PRETRAINED, engine="unroll", T=1 if quick else 3,
                          nets=1, batch=8 if quick else 64, overrides=[f"model.name_or_path={minilm_stand_in()}"]))
    if not quick:
        cases.append(dict(section="amp", kind="cosine", model="lenet", engine="unroll", T=10, nets=2, batch=batch))
    shapes = ((TRANSFORMERS[0], ("fp32", "bf16")),) if quick else \
        ((TRANSFORMERS[1], ("fp32", "bf16")), (TRANSFORMERS[3], ("fp32", "bf16")))
    for model, precisions in shapes:
        missing = unavailable(model)
        if missing:
            cases.append(dict(section="transformers", kind="engine", model=model, engine="-", T="-", nets="-",
                              precision="-", skipped=f"skipped: {missing}"))
            continue
        variants = [("unroll", p) for p in precisions] + ([] if quick else [("recompute", "bf16")])
        for engine, precision in variants:
            cases.append(dict(section="transformers", kind="engine", model=model, engine=engine, T=1 if quick else 3,
                              nets=1, precision=precision, batch=8 if quick else 64, overrides=[], flops=True))
        if not quick:
            cases.append(dict(section="amp", kind="cosine", model=model, engine="unroll", T=3, nets=1, batch=64))
    for mode in ("loop", "vmap"):
        cases.append(dict(section="eval", kind="eval", model="lenet", mode=mode, nets=4 if quick else 100, T=30,
                          batch=1024, precision="fp32"))
    shapes = [(10, 4)] if quick else [(10, 32), (30, 32), (100, 32), (10, 8), (10, 1)]
    for T, nets in shapes:
        for engine in ("unroll", "vmap") if nets > 1 else ("unroll",):
            cases.append(dict(section="engines", kind="engine", model="lenet", engine=engine, T=T, nets=nets,
                              precision="fp32", batch=batch, overrides=[]))
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

"""One case of scripts/bench.py, run in its own process (`python scripts/bench.py --case JSON`), so that its
peak memory is its own. Everything is built the way `dd-run` builds it (composed config, registries), so the
figures are those of real runs."""

from __future__ import annotations

import json
import time

import torch

from benchmark.memory import device_name, sync
from benchmark.plan import MODEL_CASES
from dd_runner.core.memory import PeakMemory


def setup(case: dict, precision: str = None):
    """Config, data, learner, synthetic set and init sampler of a case."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    import dd_runner.config  # noqa: F401  (registers the schemas)
    from dd_runner.config.validate import validate
    from dd_runner.data import load_data
    from dd_runner.core.device import Precision, resolve_device
    from dd_runner.core.errors import DDError
    from dd_runner.core.seeding import seed_everything
    from dd_runner.models.inits import InitSampler
    from dd_runner.models import ARCHS, build_learner
    from dd_runner.synthetic.build import make_synthetic

    T = case["T"]
    steps = case.get("steps") or (10 if T % 10 == 0 else T)
    overrides = MODEL_CASES[case["model"]] + [
        f"distill.steps={steps}", f"distill.epochs={T // steps}", "distill.ipc=1", "logger=none",
        f"init={case.get('init', 'random')}", f"distill.sample_nets={case['nets']}",
        f"distill.engine={case.get('engine', 'unroll')}",
        f"precision={precision or case.get('precision', 'fp32')}", f"device={case['device']}",
        f"distill.batch_size={case['batch']}", *case.get("overrides", [])]
    try:
        with initialize_config_module("dd_runner.conf", version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except HydraException as e:
        raise Skip(f"{case['model']} is not configured in this checkout: {str(e).splitlines()[0]}") from None
    if cfg.model.arch not in ARCHS:
        raise Skip(f"model.arch={cfg.model.arch} is not registered in this checkout")
    # as dd-run does before it builds anything: a model built from a config (no pretrained weights) draws its
    # body from the global generator, so without this two set-ups of one case compare two different networks
    seed_everything(cfg.seed)
    try:
        validate(cfg)
        device = resolve_device(cfg.device)
        data = load_data(cfg.dataset, cfg.model)
        learner = build_learner(cfg.model, data, device, Precision(cfg.precision, device), cfg.distill)
    except DDError as e:
        raise Skip(f"{case['model']}: {e}") from None
    synth = make_synthetic(cfg, data, learner, cfg.seed)
    return cfg, device, data, learner, synth, InitSampler(cfg.init, learner, cfg.seed)


class Skip(Exception):
    pass


def engine_case(case: dict) -> dict:
    from benchmark.ops import count_ops, minor_faults
    from dd_runner.data.stream import RealBatches
    from dd_runner.engines import ENGINES, EngineOptions

    cfg, device, data, learner, synth, inits = setup(case)
    engine = ENGINES.get(cfg.distill.engine)
    options = EngineOptions.from_config(cfg.distill)
    opt = torch.optim.Adam(synth.learnable(), lr=cfg.distill.lr, betas=tuple(cfg.distill.betas))
    batches = RealBatches(data.train, cfg.distill.batch_size, cfg.seed, device)
    memory = PeakMemory(device)

    def outer_step(it: int):
        meta = engine(learner, inits.train_nets(it, case["nets"]), synth, batches.next(), options)
        for p, g in zip(synth.learnable(), meta.grads):
            p.grad = g
        opt.step()
        return meta

    times, cpu_times, faults = [], [], []
    for it in range(case["repeats"] + 1):  # the first step warms up (kernels, code pages) and is not measured
        if it == 1:
            memory.start()
        sync(device)
        start, cpu_start, faults_start = time.perf_counter(), time.process_time(), minor_faults()
        meta = outer_step(it)
        sync(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        faults.append(minor_faults() - faults_start)
    # medians: the first timed step follows PeakMemory.start(), whose malloc_trim hands the heap back
    timed, faulted = sorted(cpu_times[1:]), sorted(faults[1:])
    result = {"seconds": min(times[1:]), "cpu_seconds": timed[0], "cpu_median": timed[len(timed) // 2],
              "times": times, "cpu_times": cpu_times, "faults": faults, "faults_per_step": faulted[len(faulted) // 2],
              "peak_mb": memory.peak_mb(), "loss": meta.loss, "device_name": device_name(device)}
    if case.get("ops"):  # two more steps, untimed, under the operation counter and the profiler (benchmark/ops.py)
        from benchmark.ops import ops_by_node

        result.update(count_ops(lambda: outer_step(case["repeats"] + 1)))
        result["op_nodes"] = ops_by_node(lambda: outer_step(case["repeats"] + 2))
    if case.get("flops"):  # one more step, untimed, under the FLOP counter: matmuls and convolutions of the
        from torch.utils.flop_counter import FlopCounterMode  # forward, backward and double backward

        with FlopCounterMode(display=False) as counter:
            engine(learner, inits.train_nets(0, case["nets"]), synth, batches.next(), options)
        result["flops"] = counter.get_total_flops()
    return result


def eval_case(case: dict) -> dict:
    from dd_runner.eval.protocol import batched_accuracies, looped_accuracies

    case = {**case, "overrides": ["distill.init_from=real"]}  # a set of real images: accuracies mean something
    cfg, device, data, learner, synth, inits = setup(case)
    evaluate = batched_accuracies if case["mode"] == "vmap" else looped_accuracies
    steps, thetas = synth.unrolled(), inits.eval_nets(case["nets"])
    evaluate(learner, thetas[:2], steps, data.test, cfg.eval.batch_size)  # warm-up
    memory = PeakMemory(device)
    memory.start()
    sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    accs = evaluate(learner, thetas, steps, data.test, cfg.eval.batch_size)
    sync(device)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start, "peak_mb": memory.peak_mb(), "accs": accs,
            "acc_mean": sum(accs) / len(accs), "test_examples": len(data.test), "device_name": device_name(device)}


def cosine_case(case: dict) -> dict:
    """The meta-gradient of the same nets, data and real batch in fp32 and in bf16, and the ATen operations
    of each. case["inner"] == "bf16": the bf16 side also runs the inner weights of linear and convolution
    layers in bf16 (cast once per net instead of at every use by autocast; the updates then round in bf16)."""
    from benchmark.ops import OpCounter
    from dd_runner.data.stream import RealBatches
    from dd_runner.engines import ENGINES, EngineOptions

    # The reference is IEEE fp32: no TF32 tensor cores (which dd-run allows in fp32 runs, core/device.py).
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    grads, ops = {}, {}
    for precision in ("fp32", "bf16"):
        cfg, device, data, learner, synth, inits = setup(case, precision)
        real = RealBatches(data.train, cfg.distill.batch_size, cfg.seed, device).next()
        thetas = inits.train_nets(0, case["nets"])
        if precision == "bf16" and case.get("inner") == "bf16":
            thetas = [bf16_matmul_weights(learner, theta) for theta in thetas]
        with OpCounter() as counter:
            meta = ENGINES.get(cfg.distill.engine)(learner, thetas, synth, real, EngineOptions.from_config(cfg.distill))
        grads[precision] = torch.cat([g.flatten().double() for g in meta.grads])
        ops[precision] = counter.total
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"], grads["fp32"], dim=0).item()
    return {"cosine": cosine, "ops": ops["bf16"], "ops_fp32": ops["fp32"], "device_name": device_name(device)}


def bf16_matmul_weights(learner, theta) -> tuple:
    """theta with the parameters of linear and convolution layers in bf16 (the others, e.g. layer norms, stay
    fp32: their autocast kernels take fp32)."""
    from torch import nn

    matmul = {f"{prefix}.{name}".lstrip(".") for prefix, m in learner.module.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for name, _ in m.named_parameters(recurse=False)}
    return tuple(p.to(torch.bfloat16) if name in matmul else p for name, p in zip(learner.names, theta))


def measure(case: dict) -> dict:
    """Measure `case` in this process: its figures, or {"skipped": ...} / {"error": ...}."""
    from dd_runner.core.device import configure_backends

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    if case.get("allocator", "auto") != "system":  # as dd-run does at the start of a run (allocator=auto)
        from dd_runner.core.allocator import configure

        configure(case.get("allocator", "auto"))
    configure_backends(deterministic=False)  # the flags a dd-run run uses (GPU: TF32 for fp32, cuDNN benchmark)
    try:
        from benchmark.artefacts import run_case
        from benchmark.captured import captured_case

        kinds = {"engine": engine_case, "eval": eval_case, "cosine": cosine_case, "run": run_case,
                 "captured": captured_case}
        return kinds[case["kind"]](case)
    except Skip as e:
        return {"skipped": f"skipped: {e}"}
    except torch.OutOfMemoryError as e:
        return {"error": f"out of memory: {str(e).splitlines()[0]}"}
    finally:
        if torch.cuda.is_available():  # the next case of an --in-process run starts from a clean allocator
            torch.cuda.empty_cache()


def run_in_this_process(case: dict) -> None:
    """Measure `case` and print its result as the last line of stdout (JSON)."""
    print(json.dumps(measure(case)))

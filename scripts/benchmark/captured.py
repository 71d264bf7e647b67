"""The `captured` section of scripts/bench.py (and the GPU check's): the outer step captured as a CUDA graph
(distill.cuda_graph, dd_runner/methods/captured_step.py) against the eager step, on the same inputs.

Per shape: seconds per meta-gradient step eagerly and replayed (the fastest of `repeats` steps each; the
Adam step, the same kernels either way, is left out so that both sides see the same set), the relative L2
distance of the two meta-gradients, and the ATen operations an eager step dispatches (a replay is one graph
launch). On a CPU the step on static buffers runs eagerly (no graph): the figures then say only that the
restructured step computes what the eager one does.
"""

from __future__ import annotations

import time

import torch

from benchmark.memory import device_name, sync


def captured_cases(quick: bool) -> list:
    """LeNet with MNIST fixed init (experiment=mnist_fixed_10's step) and random init with 100 images (4 nets
    x 30 steps under vmap), and DistilBERT-base at T=3 (the GPU check's transformer shape); --quick: toy sizes."""
    base = dict(section="captured", kind="captured", precision="fp32", overrides=[])
    if quick:
        return [dict(base, model="lenet", init="fixed", steps=1, T=3, nets=1, batch=256, engine="unroll"),
                dict(base, model="distilbert-tiny", init="random", T=1, nets=1, batch=8, engine="unroll")]
    return [dict(base, model="lenet", init="fixed", steps=1, T=3, nets=1, batch=1024, engine="unroll"),
            dict(base, model="lenet", init="random", steps=10, T=30, nets=4, batch=1024, engine="vmap"),
            dict(base, model="distilbert-base", init="random", T=3, nets=1, batch=64, engine="unroll")]


def timed(device, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def flat(grads) -> torch.Tensor:
    return torch.cat([g.detach().flatten().double() for g in grads])


def captured_case(case: dict) -> dict:
    from benchmark.cases import setup
    from benchmark.ops import count_ops
    from dd_runner.data.stream import RealBatches
    from dd_runner.engines import ENGINES, EngineOptions
    from dd_runner.methods.captured_step import WARMUP_STEPS, StaticStep, StepParts

    cfg, device, data, learner, synth, inits = setup(case)
    engine, options = ENGINES.get(cfg.distill.engine), EngineOptions.from_config(cfg.distill)
    batches = RealBatches(data.train, cfg.distill.batch_size, cfg.seed, device)
    steps = WARMUP_STEPS + 1 + case["repeats"]
    inputs = [(batches.next(), inits.train_nets(it, case["nets"])) for it in range(steps)]  # both sides: the same

    def compute(step_inputs, loss_scale):
        real, thetas = step_inputs
        return engine(learner, thetas, synth, real, options)

    eager = [timed(device, lambda: compute(inputs[it], 1.0)) for it in range(min(steps, 1 + case["repeats"]))]
    graph = device.type == "cuda"
    step = StaticStep(StepParts(lambda it: inputs[it], compute), synth.learnable(),
                      lambda: torch.zeros((), device=device), 1.0, capture=graph)
    replayed = [timed(device, lambda: step.step(it)) for it in range(steps)]
    meta, _ = step.step(steps - 1)  # the last inputs once more: compared with eager on the same inputs
    got, want = flat(meta.grads), flat(compute(inputs[steps - 1], 1.0).grads)
    return {"seconds": min(replayed[WARMUP_STEPS + 1:]), "eager_seconds": min(eager[1:]),
            "captured": step.graph is not None, "rel_l2": ((got - want).norm() / want.norm()).item(),
            **count_ops(lambda: compute(inputs[0], 1.0), top=8), "device_name": device_name(device)}

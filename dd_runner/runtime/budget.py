"""Will the run fit in memory? A lower bound of what it must hold at once, checked before distillation.

A setting such as distill.ipc=1000000000, distill.epochs=1000000000 or eval.nets=10**12 passes every range
check, then runs for minutes (or never ends) before running out of memory with remedies that cannot help.
`check_budget` runs in run() once the data and the network exist (the parameter count and the shape of
a synthetic example are known then) and before anything is allocated for the method: it adds up what
the run cannot avoid holding and refuses, in one line naming the setting to lower, a run whose estimate
exceeds the device's memory (CUDA: its total memory; CPU: MemAvailable + SwapFree of /proc/meminfo).

The estimate is a LOWER bound, so that no setting that runs is refused. It counts only tensors the code
certainly keeps alive together, and nothing it cannot size without running the network:

- the synthetic set: data, labels, learned lrs (and attention labels), the gradient and optimiser state
  of what is learned, and the copy kept by validation (eval.select);
- the unrolled graph of one group of networks (performance matching and trajectory matching): `unroll`
  keeps a copy of the trained parameters and the activations of every one of the steps x epochs inner
  steps; `recompute` keeps the parameters of every `recompute_every`-th step and one step's
  activations; the vmap engines multiply either by the networks unrolled together (distill.vmap_chunk,
  default all distill.sample_nets). Activations are the outputs of the layers with parameters, sized by
  a forward pass on the meta device (image networks; text networks count their logits only);
- the networks drawn at once: distill.sample_nets per outer step, eval.nets and eval.val_nets for the
  evaluation (only where they differ: random init, or pretrained init with init.resample), and the
  stack of networks evaluated together under vmap;
- one evaluation batch (eval.batch_size examples) through the network's widest layer.

The distillation and the evaluation phase are bounded separately; the larger one is compared.
scripts/memory_estimate.py prints the estimate beside measured peaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from dd_runner.core.errors import ConfigError

GiB = 2 ** 30


@dataclass
class Part:
    """One component of the estimate: its bytes and the settings that scale it (what to lower)."""

    name: str
    bytes: int
    levers: Tuple[str, ...]


@dataclass
class Facts:
    """What the estimate needs to know of the network and the data, read once from the built run."""

    element_bytes: int  # of the network's parameters and the synthetic set (they share the dtype)
    params: int  # trainable parameters: what every inner step updates
    drawn: int  # parameters a freshly drawn network adds (transformers share the body, redraw the head)
    example: Tuple[int, ...]  # one synthetic example (an image; text: seq_len x hidden)
    classes: int  # classes (language modelling: 1 group of sequences per step)
    vocab: int = 0  # language modelling: logits per position
    attention: Tuple[int, ...] = ()  # (layers, heads) of a transformer classifier, for attention labels
    real_length: int = 0  # text: tokens per real example (dataset.max_length)
    test_rows: int = 0  # examples in the test split
    batched: bool = False  # evaluation trains its networks together under vmap
    activations: int = 0  # per example and inner step: outputs of the layers with parameters (what backward keeps)
    widest: int = 0  # per example: the largest of those outputs (what a forward pass without a graph holds)

    def outputs(self, seq_len: int) -> int:
        """Logits of one example: its classes, or seq_len positions x the vocabulary."""
        return self.classes if not self.vocab else seq_len * self.vocab


def _count(learner, names: Sequence[str]) -> int:
    return sum(learner.module.get_parameter(n).numel() for n in names)


def layer_outputs(learner, shape: Sequence[int]) -> Tuple[int, int]:
    """(sum, max) of the output sizes of the layers with parameters for one example, from a forward pass on
    the meta device (shapes only: nothing is allocated or computed). (0, 0) for a network that cannot run
    there (data-dependent code): the estimate then counts logits only, still a lower bound."""
    from torch.func import functional_call

    sizes: List[int] = []

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor) and next(module.parameters(recurse=False), None) is not None:
            sizes.append(output.numel())

    state = {n: torch.empty_like(t, device="meta") for n, t in (*learner.module.named_parameters(),
                                                                 *learner.module.named_buffers())}
    hooks = [m.register_forward_hook(record) for m in learner.module.modules()]
    try:
        functional_call(learner.module, state, (torch.empty(1, *shape, device="meta"),))
    except Exception:  # a network that cannot run on the meta device: no activation figure
        sizes = []
    finally:
        for hook in hooks:
            hook.remove()
    return sum(sizes), max(sizes, default=0)


def facts_of(cfg, data, learner, batched: bool = False) -> Facts:
    """The Facts of a built run (no allocation: shapes and counts only)."""
    if cfg.init.mode == "pretrained":  # only what init.resample names is redrawn
        prefixes = tuple(cfg.init.resample or ())
        drawn = _count(learner, [n for n in learner.names if prefixes and n.startswith(prefixes)])
    else:
        drawn = _count(learner, getattr(learner, "redrawn", learner.names))
    lm = data.task == "language_modeling"
    example = tuple(learner.synthetic_shape(data, cfg.distill))
    activations, widest = layer_outputs(learner, example) if data.modality == "image" else (0, 0)
    return Facts(element_bytes=torch.finfo(learner.dtype).bits // 8, params=_count(learner, learner.names), drawn=drawn,
                 example=example, classes=1 if lm else data.num_classes, activations=activations, widest=widest,
                 vocab=learner.embedding.shape[0] if lm else 0,
                 attention=tuple(learner.attention_shape()) if hasattr(learner, "attention_shape") else (),
                 real_length=int(data.example_shape[0]) if data.modality == "text" else 0,
                 test_rows=len(data.test), batched=batched)


def set_parts(cfg, f: Facts, learning: bool) -> List[Part]:
    """The synthetic set, its gradients and optimiser state, validation's copy and the running average."""
    d, labels = cfg.distill, cfg.labels
    examples = d.steps * f.classes * d.ipc
    x = examples * math.prod(f.example)
    targets = examples * f.outputs(d.seq_len)
    lrs = 1 if d.shared_lr else d.steps * d.epochs
    attention = 0
    if labels.get("attention", "none") != "none" and f.attention:
        attention = examples * math.prod(f.attention) * d.seq_len ** (2 if labels.attention == "all" else 1)
    learned = x + attention + (targets if labels.type in ("soft", "unrestricted") else 0) + (lrs if d.learn_lr else 0)
    states = 2 if d.optimizer == "adam" else (1 if d.momentum else 0)
    total = x + targets + lrs + attention
    held = total + (learned * (1 + states) + total if learning else 0)  # + grads, optimiser state, best copy
    held += learned if learning and d.average else 0
    return [Part("synthetic set", held * f.element_bytes,
                 ("distill.ipc", "distill.steps", "distill.epochs", "distill.seq_len"))]


def graph_parts(cfg, f: Facts, varies: bool) -> List[Part]:
    """The unrolled inner steps of one group of networks, and the networks drawn per outer step."""
    d = cfg.distill
    T = d.steps * d.epochs
    # what backward keeps of one inner step's forward on its synthetic batch (at least the logits)
    kept_per_step = f.classes * d.ipc * max(f.activations, f.outputs(d.seq_len))
    parts = []
    method, engine = cfg.method.name, d.engine
    if method == "trajectory_matching":
        engine = "unroll"  # the student's steps are unrolled with create_graph whatever distill.engine says
    if method in ("performance_matching", "trajectory_matching"):
        together = 1
        if engine.startswith("vmap") and d.sample_nets > 1:
            together = min(d.vmap_chunk or d.sample_nets, d.sample_nets)
        recompute = engine.endswith("recompute")
        kept = T // max(1, d.recompute_every) + 1 if recompute else T
        per_net = kept * f.params + (1 if recompute else T) * kept_per_step
        levers = ("distill.epochs", "distill.steps", *(() if recompute else ("distill.ipc",)),
                  "distill.vmap_chunk", "distill.sample_nets")
        parts.append(Part(f"unrolled graph ({engine}, {together} net{'s' * (together > 1)} at once)",
                          together * per_net * f.element_bytes, levers))
    if varies and method != "trajectory_matching":
        parts.append(Part("networks drawn per outer step", d.sample_nets * f.drawn * f.element_bytes,
                          ("distill.sample_nets",)))
    return parts


def eval_parts(cfg, f: Facts, varies: bool) -> List[Part]:
    """The evaluation networks drawn up front, the stack trained together, one test batch's logits."""
    e, d = cfg.eval, cfg.distill
    per_step = f.classes * d.ipc
    drawn = (e.nets + e.val_nets) * f.drawn if varies else 0
    together = min(e.nets, max(1, e.batch_size // max(1, per_step))) if varies and f.batched else 1
    batch = min(e.batch_size, f.test_rows or e.batch_size) * max(f.widest, f.outputs(f.real_length))
    return [Part("evaluation networks", drawn * f.element_bytes, ("eval.nets", "eval.val_nets")),
            Part("networks evaluated together", (together * f.params if together > 1 else 0) * f.element_bytes,
                 ("eval.batch_size",)),
            Part("one evaluation batch", batch * f.element_bytes, ("eval.batch_size",))]


def estimate(cfg, f: Facts, varies: bool) -> Dict[str, List[Part]]:
    """{phase: parts} of a run: the distillation phase (mode=distill) and the evaluation phase. `varies`:
    the networks differ (random init, or pretrained init with init.resample), so each is drawn and kept."""
    phases: Dict[str, List[Part]] = {}
    if cfg.mode == "distill":
        val = cfg.eval.val_nets * f.drawn * f.element_bytes if varies else 0
        phases["distillation"] = (set_parts(cfg, f, learning=True) + graph_parts(cfg, f, varies)
                                  + [Part("validation networks", val, ("eval.val_nets",))])
    if cfg.mode in ("distill", "baselines"):
        phases["evaluation"] = set_parts(cfg, f, learning=False) + eval_parts(cfg, f, varies)
    return phases


def available_bytes(device: torch.device) -> Optional[int]:
    """Memory the run may use: a GPU's total memory; on a CPU MemAvailable + SwapFree (Linux); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type != "cpu":
        return None
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("MemAvailable", "SwapFree") if k in fields) or None
    except (OSError, ValueError):
        return None


def size(n: float) -> str:
    return f"{n / GiB:,.1f} GiB" if n < 1e6 * GiB else f"{n / GiB:.2g} GiB"


def lever(cfg, levers: Sequence[str]) -> str:
    """Of the settings that scale a part, the one furthest above its default (the one the user raised)."""
    from omegaconf import OmegaConf

    from dd_runner.config.schema import all_settings

    defaults = {s.key: s.default for s in all_settings()}

    def raised(key: str) -> float:
        value, default = OmegaConf.select(cfg, key, default=None), defaults.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return 0.0
        return value / default if isinstance(default, int) and default > 0 else float(value)

    return max(levers, key=raised)


def check_budget(ctx) -> None:
    """ConfigError (exit 2) when the lower bound of a phase exceeds the device's memory."""
    from dd_runner.eval.protocol import batchable

    cfg = ctx.cfg
    if cfg.mode not in ("distill", "baselines"):
        return
    limit = available_bytes(ctx.device)
    if limit is None:
        return
    varies = ctx.inits is not None and ctx.inits.varies
    facts = facts_of(cfg, ctx.data, ctx.learner, batchable(ctx.learner))
    for phase, parts in estimate(cfg, facts, varies).items():
        need = sum(p.bytes for p in parts)
        if need <= limit:
            continue
        biggest = max(parts, key=lambda p: p.bytes)
        key = lever(cfg, biggest.levers)
        shown = "; ".join(f"{p.name} {size(p.bytes)}" for p in sorted(parts, key=lambda p: -p.bytes)
                          if p.bytes >= need / 100)  # the parts that matter
        where = "the GPU has" if ctx.device.type == "cuda" else "the CPU has"
        raise ConfigError(f"{key}={_value(cfg, key)} cannot fit in memory: the {phase} needs at least "
                          f"{size(need)} ({shown}) but {where} {size(limit)}; lower {key}")


def _value(cfg, key: str):
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=None)


def out_of_memory(cfg, cuda: bool) -> str:
    """The out-of-memory line of a run: the remedies that can help with this method, engine and mode."""
    d, e = cfg.distill, cfg.eval
    T = f"distill.steps x distill.epochs (now {d.steps} x {d.epochs})"
    if cfg.mode == "train":
        fixes = [f"lower train.batch_size (now {cfg.train.batch_size}) or eval.batch_size (now {e.batch_size})"]
    elif cfg.mode == "experts":
        fixes = [f"lower experts.batch_size (now {cfg.experts.batch_size}) or eval.batch_size (now {e.batch_size})"]
    else:
        method = cfg.method.name
        by_engine = {
            "unroll": f"use distill.engine=recompute (it keeps the parameters of each step, not its graph), or lower {T}",
            "recompute": f"set distill.real_chunk (now {d.real_chunk}; e.g. 128) or raise distill.recompute_every "
                         f"(now {d.recompute_every}), or lower distill.batch_size (now {d.batch_size})",
            "vmap": f"lower distill.vmap_chunk (now {d.vmap_chunk or 'all'} of distill.sample_nets={d.sample_nets}) "
                    "or use distill.engine=vmap_recompute",
            "vmap_recompute": f"lower distill.vmap_chunk (now {d.vmap_chunk or 'all'} of distill.sample_nets="
                              f"{d.sample_nets}) or set distill.real_chunk (now {d.real_chunk})",
        }
        fixes = {
            "performance_matching": [by_engine.get(d.engine, f"lower {T}")] + (
                [f"lower distill.batch_size (now {d.batch_size})"] if d.engine in ("unroll", "vmap") else []),
            "trajectory_matching": [f"lower {T} (the student's unrolled steps) or distill.ipc (now {d.ipc})"],
            "gradient_matching": [f"lower distill.batch_size (now {d.batch_size}) or distill.ipc (now {d.ipc})"],
            "distribution_matching": [f"lower distill.batch_size (now {d.batch_size}) or distill.ipc (now {d.ipc})"],
            "logit_match": [f"lower distill.batch_size (now {d.batch_size}), distill.sample_nets (now {d.sample_nets}) "
                            f"or distill.seq_len (now {d.seq_len})"],
        }.get(method, [f"lower distill.batch_size (now {d.batch_size})"])
        fixes.append(f"while evaluating: lower eval.batch_size (now {e.batch_size})")
    if cuda and cfg.precision == "fp32":
        fixes.append("precision=bf16 halves the activations")
    what = f"mode={cfg.mode}" if cfg.mode != "distill" else f"method={cfg.method.name}" + (
        f", distill.engine={d.engine}" if cfg.method.name == "performance_matching" else "")  # the engine's user
    return f"out of memory ({what}): " + "; ".join(fixes)


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA allocator failure, or the CPU allocator's (a RuntimeError saying it cannot allocate)."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))

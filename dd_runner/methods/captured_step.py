"""distill.cuda_graph: the whole outer step of performance matching captured once as a CUDA graph and replayed.

On a GPU the meta-step is bound by the host: thousands of small ATen operations (DistilBERT at T=3: ~13,000)
at microseconds of dispatch each, while the device idles. A CUDA graph records the kernels of one outer
step - the unroll with create_graph=True, the real-batch loss, the meta-gradient, clipping and the Adam
step - and replays them with one launch. What that takes:

- a step split into host work and device work (`StepParts`): the next real batch and the sampled
  networks are drawn eagerly and copied into static buffers; the captured computation reads only those,
  writes the loss, the gradients and their norm into static outputs, and never waits for the host (the
  loop reads the loss from its static tensor after the replay: the step's one sync, as in eager mode);
- `Adam(capturable=True)` with its lrs as device tensors, so that StepLR's decays (written into them
  with fill_) reach the replays;
- warm-up steps on a side stream before capturing (cuDNN's algorithm choice, Adam's lazy state, the
  autograd bookkeeping), and autograd allowed to move nodes that remember a stream outside the capture
  (the synthetic set's leaves) onto the capture stream (set_override_stale_capture_stream);
- random draws outside the graph (networks and batches come from seeded CPU generators); dropout inside
  uses the default CUDA generator, which a graph registers and advances at every replay.

Neither shortcut works here: torch.cuda.make_graphed_callables has no double backward, and torch.compile
returns first-order meta-gradients. `StaticStep(capture=False)` runs the same restructured step eagerly
(what a CPU can test: the capture only adds the graph). The capture has not run on a device yet (no GPU
was available while it was written): `auto` falls back to eager on any capture error with one log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Callable, List, Optional, Tuple

import torch

from dd_runner.core import distributed
from dd_runner.core.errors import ConfigError, RunError
from dd_runner.engines.base import MetaGradient

log = logging.getLogger(__name__)

CAPTURABLE_ENGINES = ("unroll", "vmap")
WARMUP_STEPS = 3  # eager steps on the side stream before the capture


@dataclass
class StepParts:
    """An outer step's objective split for capture: `inputs(iteration)` draws what changes from step to step
    (host work, eager), `compute(inputs, loss_scale)` turns it into the meta-gradient (device work). Called
    as a whole it is an ordinary objective."""

    inputs: Callable[[int], Any]
    compute: Callable[[Any, float], MetaGradient]

    def __call__(self, iteration: int, loss_scale: float) -> MetaGradient:
        return self.compute(self.inputs(iteration), loss_scale)


def capture_blocker(cfg, device: torch.device, objective) -> Optional[str]:
    """Why this run's outer step cannot be captured, in a few words (None when it can)."""
    d = cfg.distill
    if device.type != "cuda":
        return f"the device is {device.type} (CUDA graphs need a CUDA device)"
    if not isinstance(objective, StepParts):
        return f"method={cfg.method.name} does not split its step into inputs and device work (performance_matching does)"
    if d.engine not in CAPTURABLE_ENGINES:
        return f"distill.engine={d.engine} saves and restores the random state on the host between inner steps"
    if cfg.precision == "fp16":
        return "precision=fp16: the GradScaler checks the gradients on the host at every step (use bf16)"
    if d.optimizer != "adam":
        return f"distill.optimizer={d.optimizer} has no capturable mode (its lr would be frozen into the graph)"
    if distributed.world_size() > 1:
        return "under torchrun the sharded meta-gradient's all-reduce is not captured"
    return None


def choose(cfg, device: torch.device, objective) -> bool:
    """Whether to capture: distill.cuda_graph=true (an error naming the reason when it cannot), false, or
    auto (capture when possible; else one log line saying why not)."""
    setting = str(cfg.distill.get("cuda_graph", "auto")).lower()
    if setting == "false":
        return False
    reason = capture_blocker(cfg, device, objective)
    if reason is None:
        return True
    if setting == "true":
        raise ConfigError(f"distill.cuda_graph=true cannot capture this run's outer step: {reason}; "
                          "use distill.cuda_graph=auto or false")
    log.info("distill.cuda_graph=auto: the outer step runs eagerly (%s)", reason)
    return False


# --- static buffers ---------------------------------------------------------------------------------
def tensors_of(tree) -> List[torch.Tensor]:
    """The tensors of a nest of lists, tuples and dataclasses (a real batch, the sampled networks)."""
    if torch.is_tensor(tree):
        return [tree]
    if is_dataclass(tree):
        return [t for f in fields(tree) for t in tensors_of(getattr(tree, f.name))]
    if isinstance(tree, (list, tuple)):
        return [t for item in tree for t in tensors_of(item)]
    return []


def cloned(tree):
    """The same nest with every tensor copied into a buffer of its own (the static inputs)."""
    if torch.is_tensor(tree):
        return tree.detach().clone()
    if is_dataclass(tree):
        return replace(tree, **{f.name: cloned(getattr(tree, f.name)) for f in fields(tree)})
    if isinstance(tree, (list, tuple)):
        return type(tree)(cloned(item) for item in tree)
    return tree


class StaticStep:
    """The outer step on static buffers: `load` copies the next inputs in, one computation writes the
    objective, the gradients (the parameters' .grad) and the gradient norm into static outputs. Eager
    (capture=False) it runs that computation every step; captured, it records it once after WARMUP_STEPS
    eager steps and replays it from then on. `apply()` is the loop's update (clipping, optimiser step),
    returning the gradient norm."""

    def __init__(self, parts: StepParts, params: List[torch.nn.Parameter], apply: Callable[[], torch.Tensor],
                 loss_scale: float, capture: bool, required: bool = False):
        self.parts, self.params, self.apply, self.loss_scale = parts, params, apply, loss_scale
        self.capture, self.required = capture, required
        self.inputs = None
        self.objective = self.grad_norm = None
        self.graph = None
        self.steps = 0
        self.stream = torch.cuda.Stream() if capture else None

    def load(self, inputs) -> None:
        """The next real batch and networks into the static inputs (allocated from the first ones)."""
        if self.inputs is None:
            self.inputs = cloned(inputs)
            return
        new, static = tensors_of(inputs), tensors_of(self.inputs)
        if [t.shape for t in new] != [t.shape for t in static]:
            raise RunError("distill.cuda_graph: the inputs of an outer step changed shape; set distill.cuda_graph=false")
        torch._foreach_copy_(static, new)  # one multi-tensor copy

    def compute(self) -> None:
        """Static inputs -> static outputs, and the optimiser step (what a capture records)."""
        meta = self.parts.compute(self.inputs, self.loss_scale)
        if self.objective is None:  # first step: the static outputs, and .grad buffers that stay put
            self.objective = torch.zeros_like(torch.as_tensor(meta.objective, device=meta.grads[0].device))
            for p in self.params:
                p.grad = torch.zeros_like(p)
        self.objective.copy_(meta.objective)
        torch._foreach_copy_([p.grad for p in self.params], list(meta.grads))
        norm = self.apply()
        if self.grad_norm is None:
            self.grad_norm = torch.zeros_like(norm)
        self.grad_norm.copy_(norm)

    def step(self, iteration: int) -> Tuple[MetaGradient, torch.Tensor]:
        self.load(self.parts.inputs(iteration))
        if self.graph is not None:
            self.graph.replay()
        elif self.capture and self.steps >= WARMUP_STEPS:
            self._capture_and_replay()
        elif self.capture:  # warm-up on the side stream the capture will use
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                self.compute()
            torch.cuda.current_stream().wait_stream(self.stream)
        else:
            self.compute()
        self.steps += 1
        return MetaGradient(objective=self.objective, grads=[p.grad for p in self.params]), self.grad_norm

    def _capture_and_replay(self) -> None:
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        override = getattr(torch.autograd.graph, "set_override_stale_capture_stream", None)
        try:
            if override:
                override(True)  # leaves created on the default stream join the capture
            # thread_local: autograd's device thread launches the backward's kernels during the capture
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self.compute()
        except Exception as e:  # conservative: any failure leaves the run eager, with the reason said once
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            torch.cuda.synchronize()
            if self.required:
                raise RunError(f"distill.cuda_graph=true: capturing the outer step failed ({reason}); "
                               "use distill.cuda_graph=auto or false") from None
            log.warning("distill.cuda_graph: capturing the outer step failed (%s); it runs eagerly from here", reason)
            self.capture = False
            self.compute()
            return
        finally:
            if override:
                override(False)
        self.graph = graph
        log.info("distill.cuda_graph: the outer step is captured (after %d eager steps) and replayed from here",
                 self.steps)
        graph.replay()

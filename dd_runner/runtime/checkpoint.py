"""Checkpoints: never lose a run.

Every `checkpoint.every` outer iterations (and when SIGTERM / SIGINT arrives) the whole training state is
written to `<run dir>/checkpoint.safetensors` atomically: tensors as tensors, everything else (optimiser
hyper-parameters, scheduler, RNG states of python / numpy / torch / CUDA, the data stream's position,
the iteration) as JSON in the header. No pickle anywhere. Restoring it and continuing gives exactly the
run that was not interrupted (byte-identical artefacts on CPU).

State objects only need `state_dict()` / `load_state_dict()`: the synthetic set, the optimiser, the
scheduler, the grad scaler, the real-data stream, the validation selection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import numpy as np
import torch
from omegaconf import OmegaConf

from dd_runner.core import distributed
from dd_runner.core.errors import ConfigError, DataError, DDError
from dd_runner.core.files import header_int, read_safetensors, safetensors_metadata, save_tensors

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.safetensors"
# Settings that may change between a run and its continuation without changing what is computed.
RUNTIME_KEYS = ("output_dir", "resume", "device", "logger", "checkpoint")


class Interrupted(DDError):
    """SIGTERM / SIGINT during distillation: the state was saved; the process should stop."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


# --- nested state <-> (tensors, JSON) -----------------------------------------------------------------
def flatten(obj: Any, prefix: str, tensors: Dict[str, torch.Tensor]) -> Any:
    """JSON-able structure with tensors replaced by references into `tensors` (keys keep their types)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, Mapping):
        return {"__dict__": [[k, flatten(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "__tuple__" if isinstance(obj, tuple) else "__list__"
        return {kind: [flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


def unflatten(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=obj["dtype"])
        if "__dict__" in obj:
            return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(unflatten(v, tensors) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [unflatten(v, tensors) for v in obj["__list__"]]
        return {k: unflatten(v, tensors) for k, v in obj.items()}
    return obj


def rng_state() -> Dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- config identity ------------------------------------------------------------------------------------
def config_fingerprint(cfg) -> Dict[str, Any]:
    """The resolved config minus the runtime keys, flattened to dotted keys."""
    data = OmegaConf.to_container(cfg, resolve=True)
    flat: Dict[str, Any] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            flat[prefix[:-1]] = node

    walk({k: v for k, v in data.items() if k not in RUNTIME_KEYS}, "")
    return flat


def config_hash(cfg) -> str:
    return hashlib.sha256(json.dumps(config_fingerprint(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list:
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]


# --- the checkpoint file --------------------------------------------------------------------------------
START_OVER = "delete it to start the run over"


def read_checkpoint_header(path: Path) -> Dict[str, str]:
    """The header metadata of a checkpoint (iteration, config hash, W&B id) without reading its tensors;
    DataError naming the file if it is unreadable or not a dd-runner checkpoint."""
    meta = safetensors_metadata(path, hint=START_OVER)
    if meta.get("format") != "dd-runner/checkpoint":
        raise DataError(f"{path} is not a dd-runner checkpoint (its header says format={meta.get('format')!r}); "
                        f"{START_OVER}")
    header_int(meta, "iteration", path, hint=START_OVER)
    return meta


def read_checkpoint(path: Path):
    """(state dict, header metadata) of a checkpoint file; DataError naming it if it is unreadable, or its
    iteration was changed (it must be a count >= 0 and agree with the lr scheduler's, which counts the same
    outer iterations)."""
    meta = read_checkpoint_header(path)
    tensors, meta = read_safetensors(path, hint=START_OVER)
    try:
        state = unflatten(json.loads(meta["state"]), tensors)
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path} is not a readable dd-runner checkpoint ({type(e).__name__}: {e}); {START_OVER}") from None
    iteration = header_int(meta, "iteration", path, hint=START_OVER)
    counted = (state.get("scheduler") or {}).get("last_epoch") if isinstance(state, dict) else None
    if isinstance(counted, int) and counted != iteration:
        raise DataError(f"{path} says iteration {iteration} but its lr scheduler has counted {counted}: the file was "
                        f"changed after dd-run wrote it; {START_OVER}")
    return state, meta


class Checkpointer:
    def __init__(self, out: Path, cfg, every: int, extra: Optional[Dict[str, str]] = None):
        self.path = Path(out) / CHECKPOINT
        self.every = every
        self.cfg_hash = config_hash(cfg)
        self.extra = dict(extra or {})
        self.iteration = 0  # the outer iteration the run is at (for failure reports)
        self._signal: Optional[int] = None
        self.on_save = None  # called with the path after every save (logger.log_checkpoints)

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, objects: Mapping[str, Any], iteration: int) -> None:
        tensors: Dict[str, torch.Tensor] = {}
        state = {name: flatten(obj.state_dict(), name, tensors) for name, obj in objects.items()}
        state["rng"] = flatten(rng_state(), "rng", tensors)
        meta = {"format": "dd-runner/checkpoint", "iteration": str(iteration), "config_hash": self.cfg_hash,
                "state": json.dumps(state), **self.extra}
        save_tensors(self.path, tensors, meta)
        log.debug("checkpoint at iteration %d: %s", iteration, self.path)
        if self.on_save is not None:
            self.on_save(self.path, iteration)

    def restore(self, objects: Mapping[str, Any], allow_config_change: bool = False) -> int:
        """Load the saved state into `objects`; returns the iteration to continue from (0 if none).
        `allow_config_change`: an explicit resume=DIR may continue with changed (non-structural) settings."""
        exists = self.exists()
        distributed.barrier()  # torchrun: every rank has looked before rank 0 may write the first checkpoint
        if not exists:
            return 0
        state, meta = read_checkpoint(self.path)
        if meta.get("config_hash") != self.cfg_hash and not allow_config_change:
            raise ConfigError(f"{self.path} was written by another config; use a fresh output_dir")
        missing = [name for name in objects if name not in state]
        if missing:
            raise ConfigError(f"{self.path} has no state for {missing}; it belongs to another method")
        for name, obj in objects.items():
            try:
                obj.load_state_dict(state[name])
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
                raise ConfigError(f"{self.path} does not fit this run's {name} ({e}); "
                                  "it was written with other shapes") from None
        try:
            set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DataError(f"{self.path} holds no usable random state ({type(e).__name__}); {START_OVER}") from None
        self.iteration = header_int(meta, "iteration", self.path, hint=START_OVER)
        log.info("resuming from the checkpoint of iteration %d (%s)", self.iteration, self.path)
        return self.iteration

    def step(self, objects: Mapping[str, Any], iteration: int) -> None:
        """After outer iteration `iteration` completed: save when due or when a stop signal arrived."""
        self.iteration = iteration
        signum = distributed.max_over_ranks(self._signal or 0)  # torchrun: every rank stops here together
        if signum:
            self.save(objects, iteration)
            name = signal.Signals(signum).name
            raise Interrupted(f"stopped by {name} after iteration {iteration}; the checkpoint is saved: "
                              f"continue with dd-run resume={self.path.parent}", signum)
        if self.every and iteration % self.every == 0:
            self.save(objects, iteration)

    @contextmanager
    def stop_signals(self) -> Iterator[None]:
        """Turn SIGTERM / SIGINT into a checkpoint at the next iteration boundary (a second one kills)."""
        previous = {}

        def handler(signum, frame):
            if self._signal is not None:  # second signal: the user insists
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                signal.raise_signal(signum)
                return
            self._signal = signum
            log.warning("%s received: saving a checkpoint after this iteration", signal.Signals(signum).name)

        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

"""Init modes: where the networks the distilled data must train come from (p(theta_0) in Algorithm 1).

- fixed: one theta_0 drawn from the seed, used for distillation and for evaluation;
- random: a fresh theta_0 ~ p(theta) for every sampled net of every outer step; evaluation uses
  `eval.nets` draws from a separate seed stream, never seen in training;
- pretrained: theta_0 loaded from a checkpoint (transformers without one: the pretrained body with the
  head transformers created); parameters named by `init.resample` are redrawn per net.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from dd_runner.core.errors import ConfigError, DataError
from dd_runner.core.seeding import derive_seed
from dd_runner.models.learner import Learner, Params

INIT_MODES = ("fixed", "random", "pretrained")


def read_state(path: str, setting: str = "init.checkpoint") -> dict:
    """Tensors of a checkpoint: safetensors (what dd-run writes), or a PyTorch state dict loaded with
    weights_only=True (no arbitrary code from pickles). DataError naming `setting`=path if unreadable."""
    import torch

    from dd_runner.core.files import read_safetensors

    if not Path(path).is_file():
        raise DataError(f"{setting}={path} does not exist; write one with `dd-run mode=train` "
                        "(it saves <run dir>/model.safetensors)")
    if Path(path).suffix in (".pt", ".pth", ".bin"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError for anything but plain tensors and containers
            raise DataError(f"{setting}={path} cannot be loaded safely: it holds more than tensors "
                            f"(torch.load weights_only=True refused it: {type(e).__name__}); save a plain "
                            "state dict or a safetensors file") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise DataError(f"{setting}={path} holds a {type(state).__name__}, not a state dict")
        return state
    return read_safetensors(path, setting=setting)[0]


def check_weights(state: dict, learner: Learner, where: str, remedy: str) -> None:
    """The one check of weights read from a file before a network uses them: every parameter of the
    learner present, with its shape, and finite. `where` names the file (and the setting pointing at it)
    in the one-line error; `remedy` says where matching weights come from. A missing or misshapen tensor
    is a ConfigError (the setting names a file of another model); a non-finite one a DataError (the file
    comes from a run that diverged: starting from it would only look like a too-high distill.lr)."""
    import torch

    missing = [n for n in learner.names if not isinstance(state.get(n), torch.Tensor)]
    wrong = [f"{n} {tuple(state[n].shape)} (the model's {tuple(learner.module.get_parameter(n).shape)})"
             for n in learner.names if n not in missing
             and tuple(state[n].shape) != tuple(learner.module.get_parameter(n).shape)]
    if missing or wrong:
        parts = ([f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"wrong shape {', '.join(wrong[:2])}{'...' if len(wrong) > 2 else ''}"] if wrong else [])
        raise ConfigError(f"{where} does not fit this model ({'; '.join(parts)}): {remedy}")
    broken = [n for n in learner.names if state[n].is_floating_point() and state[n].device.type != "meta"
              and not bool(torch.isfinite(state[n]).all())]  # meta tensors: shapes read from a header only
    if broken:
        raise DataError(f"{where} holds nan or inf weights ({', '.join(broken[:3])}{'...' if len(broken) > 3 else ''}): "
                        f"it comes from a run that diverged; {remedy}")


def load_checkpoint(path: str, learner: Learner, setting: str = "init.checkpoint") -> dict:
    """The state dict in `path` (pointed at by `setting`), checked against the learner (check_weights)."""
    state = read_state(path, setting)
    check_weights(state, learner, f"{setting}={path}",
                  "point it at a `dd-run mode=train` checkpoint of the same model settings")
    return state


class InitSampler:
    def __init__(self, init_cfg, learner: Learner, seed: int):
        if init_cfg.mode not in INIT_MODES:
            raise ConfigError(f"init.mode='{init_cfg.mode}' is not one of {', '.join(INIT_MODES)}")
        self.mode = init_cfg.mode
        self.learner = learner
        self.seed = seed
        self.resample = tuple(init_cfg.resample or ())
        self.theta0 = None
        if self.mode == "fixed":
            self.theta0 = learner.draw(derive_seed(seed, "theta0"))
        elif self.mode == "pretrained":
            if init_cfg.checkpoint:
                self.theta0 = learner.params_from_state(load_checkpoint(init_cfg.checkpoint, learner))
            elif learner.pretrained_params() is not None:
                self.theta0 = learner.pretrained_params()
            else:
                raise ConfigError("init=pretrained needs init.checkpoint=PATH (a model.safetensors from `dd-run mode=train`)")

    @property
    def varies(self) -> bool:
        """Whether different nets get different theta_0 (otherwise one net says everything)."""
        return self.mode == "random" or (self.mode == "pretrained" and bool(self.resample))

    def _draw(self, *tags) -> Params:
        seed = derive_seed(self.seed, *tags)
        if self.mode == "random":
            return self.learner.draw(seed)
        if not self.resample:
            return self.theta0
        fresh = self.learner.draw(seed)
        return tuple(f if name.startswith(self.resample) else base
                     for name, base, f in zip(self.learner.names, self.theta0, fresh))

    def train_nets(self, iteration: int, count: int) -> List[Params]:
        if not self.varies:
            return [self.theta0]
        return [self._draw("train", iteration, j) for j in range(count)]

    def eval_nets(self, count: int, purpose: str = "eval") -> List[Params]:
        """Networks never used in distillation (purpose 'eval' for test figures, 'val' for selection)."""
        if not self.varies:
            return [self.theta0]
        return [self._draw(purpose, i) for i in range(count)]

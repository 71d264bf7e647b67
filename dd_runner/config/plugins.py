"""Hydra plugins dd-run ships defaults for, installed with the `cluster` extra:
`hydra/launcher=submitit_slurm|submitit_local` (hydra-submitit-launcher) and `hydra/sweeper=optuna`
(hydra-optuna-sweeper, also chosen by the presets `search=...`).

conf/hydra/launcher/submitit_*.yaml carry our defaults under the plugin's own names, so that
`submitit_slurm` asks for a GPU and a sensible time limit. Hydra validates such files against the
plugin's schema of the same name ("automatic schema matching") and warns that this is deprecated; the
files list every key, so they keep working without it, and the warning is silenced here. The optuna
schema has a defaults list, which rules that out: its defaults come as overrides (`optuna_defaults`).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import List

from dd_runner.core.errors import ConfigError

SUBMITIT = "hydra_plugins.hydra_submitit_launcher"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper"
# what a command-line choice needs installed: (exact "group=option" or "group=" prefix) -> module
PLUGINS = {"hydra/launcher=submitit_slurm": SUBMITIT, "hydra/launcher=submitit_local": SUBMITIT,
           "hydra/sweeper=optuna": OPTUNA, "search=": OPTUNA}

warnings.filterwarnings("ignore", message=r"(?s).*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema")
logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer lists its plugins at INFO


def check_plugins(argv: List[str]) -> None:
    """One line naming the extra to install when a chosen launcher or sweeper plugin is missing."""
    for arg in argv:
        choice = arg.lstrip("+").replace(" ", "")
        module = next((m for key, m in PLUGINS.items() if choice == key or (key.endswith("=") and choice.startswith(key))), None)
        if module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"{arg} needs the Hydra plugin {module.split('.')[1].replace('_', '-')}: "
                              "pip install 'dd-runner[cluster]'")


def optuna_defaults(argv: List[str]) -> List[str]:
    """`hydra/sweeper=optuna` given directly: maximise (dd-run returns an accuracy; the plugin's default
    is to minimise) and seed the sampler from the run's seed (its default is the clock), unless set."""
    if "hydra/sweeper=optuna" not in argv:
        return argv
    extra = [f"{key}={value}" for key, value in (("hydra.sweeper.direction", "maximize"),
                                                 ("hydra.sweeper.sampler.seed", "${seed}"))
             if not any(a.startswith(f"{key}=") for a in argv)]
    return [*argv, *extra]

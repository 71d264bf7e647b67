"""Config schemas (registered in Hydra's ConfigStore on import) and validation."""

from dd_runner.config import plugins  # noqa: F401  (our defaults for Hydra's launcher / sweeper plugins)
from dd_runner.config.schema import Config, register_configs  # noqa: F401  (registers the schemas)

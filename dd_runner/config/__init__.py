"""Config schemas (registered in Hydra's ConfigStore on import) and validation."""

from dd_runner.config.schema import Config, register_configs  # noqa: F401  (registers the schemas)

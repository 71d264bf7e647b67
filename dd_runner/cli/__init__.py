"""The command line: `dd-run` (main), and what it does before Hydra starts: parse Hydra's flags
(command_line), compose and validate every job's config (preflight, override_errors), and answer
`--help [TOPIC]` from the schema (help, reference; reference_markdown renders docs/reference/config.md)."""

from dd_runner.cli.main import main  # noqa: F401  (the `dd-run` entry point: dd_runner.cli:main)

"""`python -m dd_runner ...` is `dd-run ...` (also the entry point for torchrun)."""

from dd_runner.cli.main import main

main()

"""What every layer stands on: errors, registries, seeds, devices and precision, process ranks, progress
output, and atomic / deterministic file writing. Nothing here imports another dd_runner sub-package."""

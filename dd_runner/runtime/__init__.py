"""The run's machinery around the algorithm: checkpoints and resume, W&B tracking, and the files a run
leaves in its directory. Only run.py and cli.py import these."""

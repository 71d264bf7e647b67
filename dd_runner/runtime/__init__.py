"""The run's machinery around the algorithm: checkpoints and resume, W&B tracking, snapshots, the files a run
leaves in its directory and what makes them self-contained, and `dd-export`. Only run.py and cli/ import
these."""

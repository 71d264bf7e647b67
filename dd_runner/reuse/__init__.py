"""Reusing a distilled set with nothing but its file: `load_distilled` and `DistilledSet` (distilled.py),
the header's checks (header.py), the network it was distilled for (network.py), the run's evaluation
protocol replayed on it (replay.py) and DatasetCondensation's format (dc_format.py). It sits after the
evaluation, whose code it replays, and before the run's machinery, which writes and reads these files."""

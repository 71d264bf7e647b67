"""Sweeps: the jobs of `dd-run -m` as they lie on disk, the end-of-sweep summary (jobs.py) and
`dd-report` (report.py)."""

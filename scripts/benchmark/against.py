"""`bench.py --against REF`: the `step` section's cases measured a second time with dd_runner as it was at
a git commit, in the same run, so that a change's before and after come from one command on one machine.

The package at REF (dd_runner/ with its configs as dd_runner.conf, what an install makes) is staged in a
temporary folder and put first on the cases' PYTHONPATH; the benchmark's own code (scripts/benchmark/)
stays the current one, so both sides are measured the same way. Cases of the old side run with the
system allocator (dd_runner.core.allocator may not exist there).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=None)
def staged(ref: str) -> str:
    """A folder holding dd_runner at `ref` (its conf/ inside it as dd_runner/conf), removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="dd_bench_ref_"))
    atexit.register(shutil.rmtree, folder, True)
    archive = folder / "ref.tar"
    with open(archive, "wb") as sink:
        subprocess.run(["git", "archive", ref, "dd_runner", "conf"], cwd=REPO, stdout=sink, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    shutil.move(str(folder / "conf"), str(folder / "dd_runner" / "conf"))
    return str(folder)


def commit_of(ref: str) -> str:
    """The short commit id of `ref` (ValueError naming the ref when git does not know it)."""
    proc = subprocess.run(["git", "rev-parse", "--short", f"{ref}^{{commit}}"], cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise ValueError(f"--against {ref}: not a commit of this repository")
    return proc.stdout.strip()


def env_for(ref: str, env: dict) -> dict:
    """The environment of a case measured at `ref`: its dd_runner first on the path."""
    path = staged(ref)
    return {**env, "PYTHONPATH": path + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            "PYTHONSAFEPATH": "1"}

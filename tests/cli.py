"""Run the real `dd-run` in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

from conftest import SHARED_DATA

FAST = ["logger=none", "distill.batch_size=128", "eval.nets=2", "eval.val_nets=1", "eval.baselines=[]",
        "eval.batch_size=1000"]


def dd_run(args: List[str], cwd: Path, timeout: float = 300, env: dict = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "WANDB_SILENT": "true",
                "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "dd_runner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def popen(args: List[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "WANDB_SILENT": "true"}
    return subprocess.Popen([sys.executable, "-m", "dd_runner", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

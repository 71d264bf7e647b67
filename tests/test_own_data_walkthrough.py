"""docs/own-data.md works as written: its YAML and Python files are written where their first line says,
its shell commands run in order in a fresh working directory (the distilling dd-run at tiny settings),
and its reuse snippet reproduces the run's figure. The blocks are read from the page itself, so the page
and this test cannot drift apart."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, TINY

PAGE = REPO / "docs" / "own-data.md"
BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.M | re.S)
FILE = re.compile(r"^# (?P<path>[\w./-]+\.(?:py|yaml))\b")  # a block that is a file: "# myconf/dataset/x.yaml"


def page_blocks():
    return [(m["lang"], m["body"]) for m in BLOCK.finditer(PAGE.read_text())]


def shell(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    if line.startswith("dd-run ") and "--cfg" not in line:  # the distillation itself: tiny settings appended
        line += " " + " ".join(shlex.quote(o) for o in [*TINY, "eval.every=3"])
    proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_page_names_its_files_and_commands():
    files = [FILE.match(body)["path"] for lang, body in page_blocks() if lang in ("yaml", "python") and FILE.match(body)]
    assert {"make_images.py", "my_models.py", "myconf/dataset/my_images.yaml", "myconf/model/my_convnet.yaml",
            "myconf/dataset/my_reviews.yaml"} <= set(files)
    lines = [line for lang, body in page_blocks() if lang == "bash" for line in body.splitlines()]
    assert any(line.startswith('dd-run "hydra.searchpath=[file://$PWD/myconf]" dataset=my_images model=my_convnet')
               for line in lines)


@pytest.mark.slow
def test_the_walk_through_runs_as_written(tmp_path):
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    printed = []
    for lang, body in page_blocks():
        named = FILE.match(body)
        if lang in ("yaml", "python") and named:
            path = tmp_path / named["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        elif lang == "python":  # a snippet to run where the commands ran
            proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            printed.append(proc.stdout)
        elif lang == "bash":
            for line in body.splitlines():
                shell(line, tmp_path, env)
    assert len(list((tmp_path / "my_images").glob("*/*.png"))) == 90
    retrained, recorded = map(float, printed[-1].split())
    assert retrained == recorded  # fixed init: the file alone gives the run's figure, exactly
    assert (tmp_path / "my_images_distilled" / "distilled.safetensors").is_file()

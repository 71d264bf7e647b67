"""An installed dd-run (not only an editable checkout) has every subpackage and finds its configs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "dd_runner").rglob("__init__.py")}
    assert on_disk | {"dd_runner.conf"} == listed


def test_a_built_wheel_holds_the_code_and_the_configs(tmp_path):
    source = tmp_path / "src"  # build from a copy: setuptools writes build/ next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "dd_runner", "conf"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("dd_runner-*.whl"))).namelist()
    assert "dd_runner/engines/unroll.py" in names and "dd_runner/methods/performance_matching.py" in names
    assert "dd_runner/conf/config.yaml" in names and "dd_runner/conf/dataset/mnist.yaml" in names
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)

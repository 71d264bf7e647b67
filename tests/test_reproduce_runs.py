"""scripts/reproduce_runs.py, the cells every reproduce_*.py script runs: a finished cell is reused, an
interrupted one continues from its checkpoint (dd-run resume=), and a directory holding a run of other
settings is refused in one line."""

from __future__ import annotations

import sys

import pytest

from conftest import MNIST_OFFLINE, REPO, TINY, shared_data

sys.path.insert(0, str(REPO / "scripts"))
from reproduce_runs import Cell, Reproduction  # noqa: E402


def test_cells_are_reused_continued_and_never_mixed(tmp_path, capsys):
    shared_data("mnist")
    rep = Reproduction("table", str(tmp_path))
    cell = Cell("fixed", MNIST_OFFLINE + TINY + ["init=fixed", "distill.steps=1", "device=cpu", "checkpoint.every=1"])
    first = rep.run(cell)
    assert first.metrics["test/n_nets"] == 1 and first.out == tmp_path / "table" / "runs" / "fixed"
    (first.out / "metrics.json").unlink()  # as if it had stopped after its last checkpoint
    again = rep.run(cell)
    assert "continuing it: dd-run resume=" in capsys.readouterr().out
    assert again.metrics["test/acc_mean"] == first.metrics["test/acc_mean"]
    assert rep.run(cell).metrics == again.metrics and "$ dd-run" not in capsys.readouterr().out  # reused
    with pytest.raises(SystemExit, match="was run with other settings .distill.iterations: 3 -> 4"):
        rep.run(Cell("fixed", cell.overrides + ["distill.iterations=4"]))

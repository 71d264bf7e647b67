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


def test_mnist_lever_table_names_each_lever_beside_the_plain_row(tmp_path):
    """reproduce_mnist.py --selection: the plain row (ten checks) and each lever (frequent checks, the running
    average, twice the real batch, a slower decay), each changing only what its row names; --only picks rows."""
    import subprocess

    def commands(*args):
        proc = subprocess.run([sys.executable, "scripts/reproduce_mnist.py", "--selection", "--iterations", "300",
                               "--out", str(tmp_path), "--dry-run", *args], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return [line.split("$ ", 1)[1].split() for line in proc.stdout.splitlines() if line.startswith("(not run) $ dd-run")]

    rows = {c[-1].rsplit("/", 1)[1]: set(c) for c in commands()}
    assert set(rows) == {"every30", "every10", "every10_average0.99", "batch2048", "decay100"}
    plain = rows["every30"]
    assert {"distill.iterations=300", "eval.every=30"} <= plain
    assert rows["batch2048"] - plain == {"distill.batch_size=2048", "output_dir=" + str(tmp_path / "mnist_selection/runs/batch2048")}
    assert rows["decay100"] - plain == {"distill.decay_every=100", "output_dir=" + str(tmp_path / "mnist_selection/runs/decay100")}
    assert rows["every10_average0.99"] - plain >= {"eval.every=10", "distill.average=0.99"}
    assert [c[-1].rsplit("/", 1)[1] for c in commands("--only", "decay100")] == ["decay100"]
    seeded = {c[-1].rsplit("/", 1)[1]: set(c) for c in commands("--only", "decay100", "--seeds", "2")}
    assert seeded["decay100_seed1"] - seeded["decay100"] == {"seed=1", "output_dir=" + str(tmp_path / "mnist_selection/runs/decay100_seed1")}
    refused = subprocess.run([sys.executable, "scripts/reproduce_mnist.py", "--selection", "--seeds", "0", "--out",
                              str(tmp_path / "refused"), "--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "--seeds 0" in refused.stderr.splitlines()[-1]
    assert not (tmp_path / "refused").exists()  # refused before any table is written

"""The documentation works as written: README.md and every page under docs/.

- every `dd-run ...` line without a placeholder (tests/markdown_pages.py: PLACEHOLDER) passes dd-run's
  pre-flight check, in-process; `$MINILM` and `$DD_RUNNER_SHARED_DATA` are filled in;
- every Python block runs offline against a small run made here (`outputs/runs/<date>/<time>` and
  `<run dir>` point at it), unless `<!-- docs-test: skip (reason) -->` precedes it;
- no page names a path of one machine; every relative link and anchor resolves; one H1 per page;
- the results pages are fresh, and every figure of the README's results table is on the page it links to;
- the README is a front page (at most 200 lines), and .ci/run runs exactly its test command;
- the README's first command, run as written, prints the table the README shows (slow: a real run).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MNIST_OFFLINE, SHARED_DATA, TINY, compose_cfg, shared_data
from markdown_pages import (MACHINE_PATH, PLACEHOLDER, REPO, blocks, anchors, commands, dd_run_args, links,
                            pages, prose, section)

README = REPO / "README.md"
KNOWN = {"$DD_RUNNER_SHARED_DATA": str(SHARED_DATA)}
RUN_DIR = "outputs/runs/<date>/<time>"
FIGURE = re.compile(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+|\d{4}-\d\d-\d\d")  # decimals, 7,200-style, dates
ROW = re.compile(r"│\s*(?P<name>[^│]+?)\s*│\s*(?P<acc>[\d.]+) ± (?P<std>[\d.]+) %\s*│\s*(?P<nets>\d+)\s*│\s*(?P<lr>\S+)\s*│")
# Accuracy points, as the README states them: rows trained with learned lrs follow 600 outer steps of a
# fixed-init loop that swings by several points (float rounding differs across CPUs and amplifies there);
# the baselines do not depend on the distillation.
TOLERANCE = {"learned": 5.0, "tuned": 1.0}


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def known_values() -> dict:
    from dd_runner.data.hub import minilm_stand_in

    minilm = minilm_stand_in()
    return {**KNOWN, **({"$MINILM": str(minilm)} if minilm else {})}


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_dd_run_line_passes_the_preflight_check(page):
    from dd_runner.cli.help import help_for
    from dd_runner.cli.preflight import preflight

    failures = []
    for where, line in commands(page):
        for name, value in known_values().items():
            line = line.replace(name, value)
        if PLACEHOLDER.search(line):
            continue
        args = dd_run_args(line)
        try:  # as dd-run's main() does: `--help TOPIC` is answered from the schema, the rest pre-flighted
            help_for(args) if {"-h", "--help"} & set(args) else preflight(args)
        except Exception as e:  # ConfigError, or anything else a pasted line would hit
            failures.append(f"{where}: {line}\n    {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


def test_placeholders_are_recognised_and_commands_are_not():
    templates = ["dd-run resume=outputs/runs/<date>/<time>", "dd-run -m hydra/launcher=submitit_local ...",
                 "dd-run dataset.root=DIR", "dd-run model.name_or_path=$MY_MODEL", "dd-run x=$(pwd)"]
    assert all(PLACEHOLDER.search(t) for t in templates)
    pasteable = ["dd-run experiment=mnist_fixed_10 dataset=mnist_offline", "dd-run model.name_or_path=$MINILM",
                 "dd-run -m 'eval.baselines=[random_real]' output_dir=outputs/reproduce/mnist/runs/x"]
    assert not any(PLACEHOLDER.search(c) for c in pasteable)
    assert dd_run_args("pip install -e . && dd-run a=1 b=2   # note") == ["a=1", "b=2"]
    assert dd_run_args("torchrun --standalone --nproc_per_node=4 -m dd_runner init=random") == ["init=random"]
    assert dd_run_args("dd-report outputs/multirun") is None


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished run directory at <root>/outputs/runs/<date>/<time>, for the Python blocks."""
    from dd_runner.run import run

    shared_data("mnist")
    root = tmp_path_factory.mktemp("docs_run")
    out = root / "outputs" / "runs" / "2026-01-01" / "00-00-00-000000"
    run(compose_cfg(MNIST_OFFLINE + TINY + ["init=fixed", "distill.steps=1", "distill.epochs=3", "device=cpu",
                                            f"output_dir={out}"]))
    return root, out


def python_blocks():
    return [b for page in pages() for b in blocks(page) if b.lang in ("python", "py")]


def test_skipped_python_blocks_say_why():
    skipped = [f"{b.where()}: {b.skip}" for b in python_blocks() if b.skip]
    print("skipped Python blocks:\n" + "\n".join(skipped or ["(none)"]))
    assert all(len(b.skip.strip()) >= 8 for b in python_blocks() if b.skip)  # a reason, not a bare marker


@pytest.mark.parametrize("block", [b for b in python_blocks() if not b.skip], ids=lambda b: b.where())
def test_every_python_block_runs_offline(block, small_run):
    root, out = small_run
    here = str(out.relative_to(root))
    code = block.body.replace(RUN_DIR, here).replace("<run dir>", here)
    for where, line in commands(block.page):  # a run directory the page's own commands name (output_dir=...)
        named = next((a.split("=", 1)[1] for a in dd_run_args(line) or [] if a.startswith("output_dir=")), None)
        if named and not PLACEHOLDER.search(named):
            code = re.sub(rf"(?<![\w/.-]){re.escape(named)}(?![\w.-])", here, code)
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f"{block.where()} fails (give it runnable values, or mark it "
                                  f"<!-- docs-test: skip (why) -->):\n{proc.stderr[-2000:]}")


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_page_names_a_path_of_one_machine(page):
    found = [(n, line.strip()) for n, line in enumerate(page.read_text().splitlines(), 1) if MACHINE_PATH.search(line)]
    assert not found, "\n".join(f"{page_id(page)}:{n}: {line}" for n, line in found)


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.relative_to(REPO)}")
    assert not broken, f"{page_id(page)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_one_h1_per_page(page):
    h1 = [line for line in prose(page).splitlines() if re.match(r"# \S", line)]
    assert len(h1) == 1, f"{page_id(page)} has {len(h1)} top-level headings: {h1}"


def test_results_pages_are_fresh():
    proc = subprocess.run([sys.executable, "scripts/results_pages.py", "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_figure_of_the_readme_results_table_is_on_its_page():
    rows = [line for line in section(README, "Results").splitlines() if line.startswith("|")][2:]
    assert len(rows) >= 5
    for row in rows:
        target = re.search(r"\]\((?P<t>docs/results/[^)#]+)", row)
        assert target, f"a results row without its page: {row}"
        page = (REPO / target["t"]).read_text()
        cells = row.split("](")[0]  # the figures, not the link
        missing = [f for f in FIGURE.findall(cells) if f not in page]
        assert FIGURE.search(cells) and not missing, f"{target['t']} lacks {missing} of the README row: {row}"


def test_readme_is_a_front_page_and_ci_runs_its_test_command():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    test_command = "pip install -e '.[test]' && python -m pytest -q"
    assert test_command in section(README, "The first run")
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()


def readme_first_command() -> str:
    """The dd-run of the first run's `pip install -e . && dd-run ...`, exactly as written."""
    m = re.search(r"^pip install -e \. && (?P<cmd>dd-run .+)$", section(README, "The first run"), re.M)
    assert m, "the README's first run is `pip install -e . && dd-run ...`"
    return m["cmd"]


def table_rows(text: str) -> dict:
    return {m["name"]: (float(m["acc"]), m["nets"], m["lr"]) for m in ROW.finditer(text)}


@pytest.mark.slow
def test_the_readme_first_run_prints_what_the_readme_shows(tmp_path):
    """The README's first command as written (without `pip install -e .`), in a fresh working directory;
    its results table against the README's, accuracies within TOLERANCE points; then the README's reuse
    snippet on that run."""
    shared_data("mnist")
    first_run = section(README, "The first run")
    shown = table_rows(next(b.body for b in blocks(README) if b.lang == "text" and "test accuracy" in b.body))
    env = {**os.environ, "DD_RUNNER_SHARED_DATA": str(SHARED_DATA), "WANDB_MODE": "offline", "COLUMNS": "200"}
    proc = subprocess.run(shlex.split(readme_first_command()), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = table_rows(proc.stdout)
    assert list(printed) == list(shown), proc.stdout[-3000:]
    for name, (acc, nets, lr) in shown.items():
        assert printed[name][1:] == (nets, lr), name
        allowed = TOLERANCE["learned" if lr == "learned" else "tuned"]
        assert abs(printed[name][0] - acc) <= allowed, f"{name}: printed {printed[name][0]}, README {acc}"
    run_dir = next((tmp_path / "outputs" / "runs").glob("*/*"))
    snippet = next(b for b in blocks(README) if b.lang == "python").body.replace(RUN_DIR, str(run_dir.relative_to(tmp_path)))
    said = re.search(r"`(?P<a>[\d.]+) (?P<b>[\d.]+)` for the run above", first_run)
    out = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    retrained, recorded = map(float, out.stdout.split())
    assert retrained == pytest.approx(recorded, abs=1e-3)  # the file alone reproduces the run's figure
    assert recorded * 100 == pytest.approx(printed["distilled"][0], abs=0.01)
    assert abs(recorded - float(said["b"])) * 100 <= TOLERANCE["learned"] and said["a"] == said["b"]

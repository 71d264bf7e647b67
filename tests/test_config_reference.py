"""docs/reference/config.md is generated from the schema and conf/ (scripts/config_reference.py): the
committed page must be current, hold every key, and every runnable command in it must pass the
pre-flight check."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from dd_runner.cli.help import help_for
from dd_runner.cli.preflight import preflight
from dd_runner.cli.reference_markdown import escape, reference_markdown
from dd_runner.config.schema import all_settings

from conftest import REPO

PAGE = REPO / "docs" / "reference" / "config.md"
SCRIPT = REPO / "scripts" / "config_reference.py"


def test_the_committed_reference_is_current():
    assert PAGE.is_file() and PAGE.read_text() == reference_markdown(), \
        "docs/reference/config.md is stale: run python scripts/config_reference.py and commit it"


def test_every_schema_key_is_in_the_reference_with_its_help():
    text = PAGE.read_text()
    for s in all_settings():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{s.key}` |")), None)
        assert row is not None, s.key
        assert s.type in row and escape(s.help) in row, s.key


def test_the_page_is_plain_markdown_with_relative_links_and_no_machine_paths():
    text = PAGE.read_text()
    assert len(re.findall(r"^# ", text, flags=re.M)) == 1
    links = re.findall(r"\]\(([^)]*)\)", text)
    assert links and all(not re.match(r"[a-z]+:", link) and not link.startswith("/") for link in links)
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}
    assert {link[1:] for link in links if link.startswith("#")} <= anchors
    for path in ("/root", "/work", "/tmp/", "site-packages"):
        assert path not in text


def test_every_command_in_the_page_passes_the_preflight_check():
    placeholder = re.compile(r"<|\.\.\.|[= ][A-Z][A-Z_]+( |$)")  # <run dir>, ..., DIR, PATH, GROUP
    commands = [c for c in re.findall(r"`(dd-run [^`]*)`", PAGE.read_text()) if not placeholder.search(c)]
    assert any("experiment=agnews_maekawa" in c for c in commands)
    for command in commands:
        argv = shlex.split(command)[1:]
        help_for(argv) if "--help" in argv else preflight(argv)


def test_the_script_check_fails_on_a_stale_page(tmp_path):
    stale = tmp_path / "config.md"
    stale.write_text(reference_markdown().replace("Inner gradient steps", "Inner steps"))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check", "--output", str(stale)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "is stale: run python scripts/config_reference.py" in proc.stderr

"""`dd-run --help`: every option with its whole description; `dd-run --help GROUP|SECTION|KEY`: every key
with its type, default, allowed values, range and whole help text, read from the schema."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

import pytest

from dd_runner.cli.main import main
from dd_runner.config.fields import allowed
from dd_runner.cli.help import help_for
from dd_runner.cli.reference import option_description, topic_names
from dd_runner.config.schema import DistillConfig, all_settings
from dd_runner.config.fields import settings

CONF = files("dd_runner.conf")
GROUP_FOLDERS = ["dataset", "model", "init", "labels", "method", "logger", "augment", "experiment", "search",
                 "recipe", "hydra/launcher"]


def flat(text: str) -> str:
    """Whitespace-normalised: the help wraps its lines."""
    return " ".join(text.split())


def leading_comment(text: str) -> str:
    """The YAML file's comment up to its first blank comment line or non-comment line (read here
    independently of the code under test)."""
    out = []
    for line in text.splitlines():
        if line.startswith("# @package"):
            continue
        if line.strip() in ("#", "") or not line.startswith("#"):
            break
        out.append(line.lstrip("#").strip())
    return " ".join(out)


def option_files():
    return [(group, path) for group in GROUP_FOLDERS for path in sorted(CONF.joinpath(group).iterdir(), key=str)
            if path.name.endswith(".yaml")]


def test_help_shows_every_option_with_its_whole_description():
    text = flat(help_for(["--help"]))
    for group, path in option_files():
        description = flat(leading_comment(path.read_text()))
        assert description, f"{group}/{path.name} has no description comment"
        assert f"{path.name[:-5]} {description}" in text, (group, path.name)
    for pointer in ("dd-run --help GROUP", "docs/reference/config.md", "--config-dir DIR", "hydra.searchpath"):
        assert pointer in text
    for section in ("distill", "eval", "train", "experts", "checkpoint", "top"):
        assert f" {section} " in text


def repeats_its_start(description: str) -> bool:
    """'MNIST offline: ... MNIST without network: ...': a short summary line, then the long one saying it
    again (a later sentence starts with the description's first word)."""
    first = description.split()[0]
    return any(s.split()[:1] == [first] for s in description.split(". ")[1:])


def test_every_option_file_has_one_description_paragraph():
    for group, path in option_files():
        assert not repeats_its_start(option_description(path.read_text())), f"{group}/{path.name}"
    assert repeats_its_start("Weights & Biases, offline by default. Weights & Biases. Offline by default.")


def test_help_distill_in_a_terminal_lists_every_key_with_its_whole_help(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dd_runner", "--help", "distill"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = flat(proc.stdout)
    for s in settings(DistillConfig, "distill."):
        assert f"{s.key} ({s.type}; default " in text and s.help in text, s.key
    assert "distill.engine (str; default unroll; one of " in text and "distill.steps (int; default 10; > 0)" in text


@pytest.mark.parametrize("name", topic_names())
def test_every_topic_has_help(name):
    text = flat(help_for(["--help", name]))
    assert text


def test_every_schema_key_is_in_the_help_of_its_topic():
    for s in all_settings():
        section = s.key.split(".")[0] if "." in s.key else "top"
        text = flat(help_for(["--help", section]))
        assert f"{s.key} ({s.type}" in text and s.help in text, s.key
        values = allowed(s.choices)
        if values:
            assert f"one of {', '.join(values)}" in text, s.key
        if s.bound is not None:
            assert s.bound.text in text, s.key


def test_help_method_says_which_method_has_each_key():
    text = flat(help_for(["--help", "method"]))
    assert "method.outer_loop (int; default 1; > 0; method=gradient_matching only)" in text
    assert "method.batch_real (int; default 256; > 0; method=gradient_matching / distribution_matching only)" in text
    assert "method.experts (str or null; default null; method=trajectory_matching only)" in text
    for option in ("gradient_matching", "distribution_matching", "trajectory_matching", "logit_match"):
        assert f" {option} " in text


def test_help_of_one_key():
    assert flat(help_for(["--help", "eval.select"])) == (
        "eval.select (str; default best; one of best, last) Which set to keep: best (by validation accuracy) or last.")


@pytest.mark.parametrize("topic, message", [
    ("nosuchgroup", "unknown help topic 'nosuchgroup'; valid: dataset, model, init"),
    ("distil", "unknown help topic 'distil' (did you mean 'distill'?)"),
    ("distill.stepz", "unknown key 'distill.stepz' (did you mean 'distill.steps'?); dd-run --help distill lists"),
])
def test_an_unknown_topic_is_one_line_exit_2(capsys, topic, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--help", topic])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"dd-run: error: {message}")


def test_help_lists_the_options_of_a_user_config_folder(tmp_path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "my_images.yaml").write_text(
        "# My images: a copy of MNIST offline,\n# described over two lines.\n#\n# A note.\ndefaults:\n"
        "  - mnist_offline\n  - _self_\nname: my_images\n")
    for given in ([f"hydra.searchpath=[file://{tmp_path}]"], ["--config-dir", str(tmp_path)]):
        text = flat(help_for(["--help", "dataset", *given]))
        assert "my_images My images: a copy of MNIST offline, described over two lines. " in text
        assert "A note" not in text and " mnist_offline " in text
    assert "my_images" not in help_for(["--help", "dataset"])


def test_help_checks_the_overrides_it_is_given(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help", "distill", "distill.stepz=3"])
    assert exit_.value.code == 2 and "unknown key 'distill.stepz'" in capsys.readouterr().err

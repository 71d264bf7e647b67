"""Reading the documentation for tests/test_docs.py: its pages, their code blocks and inline code, the
dd-run command lines in them, their links and headings, and the placeholders that make a line a template."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

REPO = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
INLINE = re.compile(r"(`+)(?P<code>.+?)\1")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$", re.M)
# A template, not a command: an angle-bracket slot, an ellipsis, a variable or command substitution whose
# value the test cannot know, or one of these upper-case words standing for a value of yours.
PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>|\.\.\.|\$\(|\$\{?(?!(?:MINILM|DD_RUNNER_SHARED_DATA)\b)[A-Za-z_]\w*"
                         r"|(?<![\w.])(?:DIR|PATH|OUT|FILE|SWEEP|NAME|GROUP|KEY|VALUE|OPTION)(?![\w.])")
# Paths that belong to one machine.
MACHINE_PATH = re.compile(r"(?<![\w.~])(?:/root\b|/home/[^/\s`'\"]+|/work\b|/tmp/[^/\s`'\"]+/)|site-packages")
SHELL_LANGS = {"", "bash", "sh", "shell", "zsh"}


@dataclass
class Block:
    page: Path
    lang: str
    body: str
    line: int
    skip: Optional[str]  # the reason of a `<!-- docs-test: skip (...) -->` before it

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> List[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def blocks(page: Path) -> List[Block]:
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").splitlines()
        skip = SKIP.search(before[-1]) if before else None
        out.append(Block(page, m["lang"].lower(), m["body"], text.count("\n", 0, m.start()) + 1,
                         skip["reason"] if skip else None))
    return out


def prose(page: Path) -> str:
    """The page without its fenced code blocks (links and inline code are read from this)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text())


def shell_lines(body: str) -> Iterator[str]:
    """Logical lines of a shell block: `\\` continuations joined."""
    pending = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def dd_run_args(line: str) -> Optional[List[str]]:
    """The arguments of the dd-run in a shell line (`dd-run ...`, or `python -m dd_runner ...` / torchrun's
    `-m dd_runner ...`), shell comments dropped; None when the line runs no dd-run."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: not a shell line
        return None
    parts: List[List[str]] = [[]]  # `pip install -e . && dd-run ...`: each command of the line
    for w in words:
        if w in ("&&", "||", ";", "|"):
            parts.append([])
        else:
            parts[-1].append(w)
    for p in parts:
        if p[:1] == ["dd-run"]:
            return p[1:]
        for i in range(len(p) - 1):
            if p[i] == "-m" and p[i + 1] == "dd_runner":
                return p[i + 2:]
    return None


def commands(page: Path) -> Iterator[tuple]:
    """(where, line) of every dd-run line: in shell blocks, and in inline code of the prose."""
    for b in blocks(page):
        if b.lang in SHELL_LANGS:
            for line in shell_lines(b.body):
                if dd_run_args(line) is not None:
                    yield b.where(), line
    text = prose(page)
    for m in INLINE.finditer(text):
        code = m["code"].strip()
        if code.startswith("dd-run ") or " -m dd_runner " in code:
            yield f"{page.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}", code


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set:
    seen: dict = {}
    out = set()
    for m in HEADING.finditer(prose(page)):
        base = slug(m["text"])
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def links(page: Path) -> Iterator[str]:
    yield from (m["target"] for m in LINK.finditer(INLINE.sub("", prose(page))))


def section(page: Path, title: str) -> str:
    """The text of the `## title` section of a page, up to the next heading of its level."""
    text = page.read_text()
    start = re.search(rf"^## {re.escape(title)}\s*$", text, re.M)
    assert start, f"{page.name} has no '## {title}' section"
    end = re.search(r"^## ", text[start.end():], re.M)
    return text[start.end(): start.end() + end.start() if end else len(text)]

"""Reading the docs' Markdown: tables, links and shell commands, for the drift tests."""

from __future__ import annotations

import re
from pathlib import Path

from tests.tools import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    """A table row's cells; `\\|` is a pipe inside a cell."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def table(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the table whose header row starts with `first_header`."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("|") and _cells(line)[0] == first_header:
            rows = []
            for row in lines[index + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    raise AssertionError(f"no table with the header {first_header!r}")


def links(path: Path) -> list[str]:
    return LINK.findall(path.read_text(encoding="utf-8"))


def anchors(text: str) -> set[str]:
    return set(re.findall(r'<a id="([^"]+)"></a>', text))


def shell_commands(text: str, program: str) -> list[str]:
    """Command lines of `program` in the fenced code blocks, `$ ` prompts and `\\` continuations joined."""
    commands: list[str] = []
    in_block = False
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        line = pending + line.removeprefix("$ ")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith(program + " "):
            commands.append(line)
    return commands

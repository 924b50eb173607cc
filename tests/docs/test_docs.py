"""The docs say what the code does: links resolve, every check and command they show exists."""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, README, anchors, doc, links, shell_commands, table
from zuul_k8s.cli import build_parser
from zuul_k8s.selftest import probe

PAGES = sorted(DOCS.glob("*.md"))


def test_readme_links_every_doc() -> None:
    linked = {(README.parent / target).resolve() for target in links(README) if target.startswith("docs/")}
    assert {page.resolve() for page in PAGES} <= linked


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in links(page):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to {target}: no such file"
        if anchor and file.suffix == ".md" and "<a id=" in file.read_text(encoding="utf-8"):
            assert anchor in anchors(file.read_text(encoding="utf-8")), f"{page.name}: no anchor {target}"


def test_selftest_md_lists_every_check_of_the_probe_in_order() -> None:
    documented = [row[0].strip("`") for row in table(doc("selftest.md"), "check")]
    assert documented == [check[0] for check in probe.CHECKS]


COMMANDS = [(page.name, line) for page in [README, *PAGES]
            for line in shell_commands(page.read_text(encoding="utf-8"), "zuul-k8s")]
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


def argv_of(line: str) -> list[str]:
    """The command's own words: up to the first pipe or redirection, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    for word in lexer:
        if word in SHELL_OPERATORS:
            break
        words.append(word)
    return words[1:]


def cli(argv: list[str]) -> tuple[int, str]:
    """Parse like `zuul-k8s ARGV` would: (exit code, what argparse printed); 0 when it parsed."""
    output = io.StringIO()
    try:
        with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
            build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0 after printing
        return int(exc.code or 0), output.getvalue()
    return 0, output.getvalue()


def test_the_docs_show_every_command() -> None:
    shown = {argv_of(line)[0] for _, line in COMMANDS if argv_of(line)}
    assert shown >= {"init", "validate", "nodes", "preflight", "apply", "selftest", "upgrade"}


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {line[:60]}" for p, line in COMMANDS])
def test_each_command_in_the_docs_parses(page: str, line: str) -> None:
    """Options renamed or removed in the CLI make the doc's example fail here.

    A usage line (`[--limit HOSTS]`, placeholders) cannot be parsed as is: each of
    its options must then appear in the subcommand's --help.
    """
    argv = argv_of(line)
    if "[" not in line:
        code, output = cli(argv)
        assert code == 0, f"{page}: `{line}` does not parse: {output.strip()}"
        return
    command = [word for word in argv if not word.startswith("[")]
    command = command[:next((i for i, w in enumerate(command) if w.startswith("-")), len(command))]
    code, usage = cli([*command, "--help"])
    assert code == 0, f"{page}: `{line}`: no command {' '.join(command)}"
    for word in argv:
        option = word.strip("[]").split("=")[0]
        if option.startswith("-"):
            assert option in usage.split(), f"{page}: `{line}`: {option} is not an option of {command}"

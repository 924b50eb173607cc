"""docs/migrating.md says what the kit does: the `validate -f` findings it quotes for each
peer's executor are what validate prints today, every config key of its mapping tables
exists, and its example config is valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docs.markdown import doc, table
from tests.tools import REPO
from zuul_k8s import config_reference

PAGE = doc("migrating.md")
PEERS = ("zuul-operator-executor.yaml", "sf-operator-executor-procmount.yaml",
         "zuul-helm-executor.yaml")


def blocks(text: str) -> list[list[str]]:
    """The fenced code blocks, as lists of lines."""
    out: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if current is None:
                current = []
            else:
                out.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return out


def validate_blocks() -> dict[str, list[str]]:
    """manifest path -> the lines the page quotes as validate's output for it."""
    found = {}
    for block in blocks(PAGE):
        if block and block[0].startswith("$ zuul-k8s validate -f "):
            found[block[0].removeprefix("$ zuul-k8s validate -f ")] = block[1:]
    return found


def test_the_page_quotes_every_peer_manifest() -> None:
    assert sorted(validate_blocks()) == sorted(f"tests/core/manifests/{p}" for p in PEERS)
    for peer in PEERS:
        header = (REPO / "tests/core/manifests" / peer).read_text().splitlines()[0]
        assert header.startswith("# "), f"{peer}: no header naming the source"


@pytest.mark.parametrize("manifest", sorted(validate_blocks()))
def test_quoted_findings_are_what_validate_says(manifest: str) -> None:
    run = subprocess.run([sys.executable, "-m", "zuul_k8s", "validate", "-f", manifest],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # each has errors: that is the point
    actual = (run.stdout + run.stderr).splitlines()
    position = 0
    for line in validate_blocks()[manifest]:
        if line == "...":
            continue
        assert line in actual[position:], (
            f"migrating.md quotes for {manifest}:\n  {line}\nbut validate says (from line "
            f"{position}):\n" + "\n".join(actual[position:]))
        position = actual.index(line, position) + 1
    errors = sum(line.startswith("error:") for line in actual)
    quoted = sum(line.startswith("error:") for line in validate_blocks()[manifest])
    assert errors == quoted, f"{manifest}: validate finds {errors} errors, the page quotes {quoted}"


def config_keys() -> set[str]:
    return set(re.findall(r"^\| `([^`]+)`", config_reference.markdown(), re.M))


@pytest.mark.parametrize("peer", ["From the Zuul operator", "From sf-operator",
                                  "From the zuul Helm chart"])
def test_mapping_tables_name_real_config_keys(peer: str) -> None:
    section = PAGE[PAGE.index(f"### {peer}"):]
    rows = table(section, "their setting")
    assert rows, peer
    keys = config_keys()
    for row in rows:
        for key in re.findall(r"`([^`]+)`", row[1]):
            assert key in keys, f"{peer}: `{key}` is not a key of the kit's config"


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    example = next(b for b in blocks(PAGE) if b and b[0] == "# zuul-k8s.yaml")
    path = tmp_path / "zuul-k8s.yaml"
    path.write_text("\n".join(example) + "\n")
    yaml.safe_load(path.read_text())
    run = subprocess.run([sys.executable, "-m", "zuul_k8s", "validate", "-c", str(path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr

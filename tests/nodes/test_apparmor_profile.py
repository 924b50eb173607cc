"""The kit's AppArmor profile compiles with the real parser; its AppArmor 4 variant adds only `userns,`."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest

from tests.tools import require_tool
from zuul_k8s import profiles

pytestmark = pytest.mark.nodes
BASE = profiles.apparmor_profile_path()
ABI4 = profiles.apparmor_profile_path(abi4=True)


def compile_profile(path: Path) -> subprocess.CompletedProcess[str]:
    parser = require_tool("apparmor_parser")
    return subprocess.run([parser, "-Q", "-K", str(path)], capture_output=True, text=True)


def test_profile_compiles() -> None:
    result = compile_profile(BASE)
    assert result.returncode == 0, result.stderr


def test_profile_allows_what_bwrap_does_and_names_itself() -> None:
    rules = {line.strip() for line in BASE.read_text().splitlines()}
    assert {"mount,", "umount,", "pivot_root,"} <= rules
    assert any(line.startswith("profile zuul-executor ") for line in rules)


def test_a_broken_profile_fails_with_a_line_number(tmp_path: Path) -> None:
    """The check can fail: the same parser refuses a damaged copy."""
    broken = tmp_path / "zuul-executor"
    broken.write_text(BASE.read_text().replace("pivot_root,", "pivot_root"))
    result = compile_profile(broken)
    assert result.returncode != 0
    assert "line" in result.stderr


def test_abi4_variant_is_the_profile_plus_userns_only() -> None:
    diff = difflib.unified_diff(BASE.read_text().splitlines(), ABI4.read_text().splitlines(),
                                lineterm="", n=0)
    changed = [
        line for line in diff
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
        and line[1:].strip() and not line[1:].lstrip().startswith("#")  # rules, not comments
    ]
    assert sorted(changed) == sorted(["-abi <abi/3.0>,", "+abi <abi/4.0>,", "+  userns,"])


def test_this_parser_predates_the_userns_rule(tmp_path: Path) -> None:
    """Why there are two files: AppArmor 3.0 (Debian 12) rejects `userns,`."""
    version = subprocess.run([require_tool("apparmor_parser"), "--version"], capture_output=True,
                             text=True).stdout
    if "version 3." not in version:
        pytest.skip(f"parser is not AppArmor 3: {version.splitlines()[0]}")
    as_abi3 = tmp_path / "zuul-executor"
    as_abi3.write_text(ABI4.read_text().replace("abi <abi/4.0>,", "abi <abi/3.0>,"))
    result = compile_profile(as_abi3)
    assert result.returncode != 0
    line = next(i for i, text in enumerate(as_abi3.read_text().splitlines(), 1)
                if text.strip() == "userns,")
    assert f"line {line}" in result.stderr, result.stderr

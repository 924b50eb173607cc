"""A fresh clone has no ../shared: the fixture tests say how to get them, and fail only on CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.tools import FIXTURES_ENV, REPO


def _run_fixture_tests(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[FIXTURES_ENV] = str(tmp_path / "nowhere")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/podsecurity/test_fixtures.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_missing_fixtures_skip_with_the_way_to_get_them(tmp_path: Path) -> None:
    result = _run_fixture_tests(tmp_path, None)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "skipped" in result.stdout and "failed" not in result.stdout
    assert f"set {FIXTURES_ENV} to a directory holding pod-security/" in result.stdout


def test_missing_fixtures_fail_on_ci(tmp_path: Path) -> None:
    result = _run_fixture_tests(tmp_path, "true")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "failed" in result.stdout and FIXTURES_ENV in result.stdout

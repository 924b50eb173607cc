"""What tests need from the machine: tools on PATH and the shared fixtures.

On CI (CI=true) a missing tool is a failure, never a skip: a green run must
mean the real part was exercised.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ON_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """The tool's path; skips locally, fails on CI, when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def shared(*parts: str) -> Path:
    """A path under ../shared; fails (not skips) when shared/ is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: tests read the shared fixtures from ../shared")
    return path

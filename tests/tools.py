"""What tests need from the machine: tools on PATH and the upstream fixtures.

On CI (CI=true) a missing tool or fixture is a failure, never a skip: a green
run must mean the real part was exercised. Elsewhere (a fresh clone, say) it is
a skip that says how to get it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Upstream test data the kit is checked against, kept outside the repository:
# pod-security/ is Kubernetes' staging/src/k8s.io/pod-security-admission/test/testdata
# (LEVEL/vX.Y/{pass,fail}/*.yaml), seccomp/moby-default.json is moby's
# profiles/seccomp/default.json.
FIXTURES_ENV = "ZUUL_K8S_FIXTURES"
FIXTURES = Path(os.environ.get(FIXTURES_ENV) or REPO.parent / "shared" / "fixtures")
FIXTURES_HOWTO = (
    f"set {FIXTURES_ENV} to a directory holding pod-security/ (a copy of Kubernetes' "
    "staging/src/k8s.io/pod-security-admission/test/testdata) and seccomp/moby-default.json "
    f"(moby's profiles/seccomp/default.json); default {REPO.parent / 'shared' / 'fixtures'}"
)


def require_tool(name: str) -> str:
    """The tool's path; skips locally, fails on CI, when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def missing_fixtures(what: str) -> None:
    """Fails on CI, skips elsewhere, saying how to get the fixtures."""
    message = f"{what} is missing: {FIXTURES_HOWTO}"
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message)


def fixture(*parts: str) -> Path:
    """A path under the upstream fixtures directory; see missing_fixtures when it is absent."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        missing_fixtures(str(path))
    return path

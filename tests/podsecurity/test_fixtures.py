"""Every upstream Pod Security fixture present agrees with the engine.

The fixture set (tests/tools.py: FIXTURES, from ZUUL_K8S_FIXTURES or
../shared/fixtures) is a sample that can change (some files are held back), so
the files are found, never listed. A missing directory fails the run on CI (a
green run must mean the fixtures were evaluated) and skips elsewhere, saying
how to get them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.tools import FIXTURES as UPSTREAM
from tests.tools import missing_fixtures
from zuul_k8s.podsecurity import CHECKS, evaluate_object
from zuul_k8s.podsecurity.registry import CEILING, selected
from zuul_k8s.podsecurity.versions import effective_minor

# libyaml when present: the fixtures are Kubernetes' own serializer output, and
# the kit's strict loader (tested on its own) would triple this module's time.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

FIXTURES = UPSTREAM / "pod-security"
CHECK_BY_PREFIX = {check.id.lower(): check.id for check in CHECKS}


def _fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*/v1.*/*/*.yaml"))


def _cases() -> list[object]:
    files = _fixture_files()
    if not files:
        return [pytest.param(None, id="fixtures-missing")]
    return [pytest.param(path, id=str(path.relative_to(FIXTURES))) for path in files]


def _where(path: Path) -> tuple[str, str, str]:
    level, version, expected = path.parts[-4:-1]
    return level, version, expected


def _named_check(path: Path) -> str | None:
    """The check a fixture exercises, from its name (`procmount1.yaml`); None for base*."""
    prefix = re.sub(r"[0-9]+$", "", path.stem)
    if prefix.startswith("base"):
        return None
    assert prefix in CHECK_BY_PREFIX, f"{path.name}: no check with ID {prefix!r} in the registry"
    return CHECK_BY_PREFIX[prefix]


@pytest.mark.parametrize("path", _cases())
def test_fixture_verdict(path: Path | None) -> None:
    if path is None:
        missing_fixtures(f"{FIXTURES} (no fixture files)")
    level, version, expected = _where(path)
    docs = [doc for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=LOADER) if doc]
    assert len(docs) == 1
    verdict = evaluate_object(docs[0], level, version)
    assert verdict is not None
    if expected == "pass":
        assert verdict.allowed, verdict.message()
        return
    assert expected == "fail"
    assert not verdict.allowed, f"{path.name} was allowed at {level} {version}"
    # Denied for the right reason: by the check the file exercises, or by the
    # restricted check that replaces it at this version (spec 9.1).
    named = _named_check(path)
    minor = effective_minor(version, CEILING)
    accepted = {named} | {check.id for check, variant in selected(level, minor) if named in variant.overrides}
    denied_by = {denial.check for denial in verdict.denials}
    assert denied_by & accepted, f"denied by {sorted(denied_by)}, not by {sorted(accepted)}"


def test_fixture_layout_covers_both_levels_and_outcomes() -> None:
    """Guards the parametrization: a moved or emptied directory must not pass quietly."""
    files = _fixture_files()
    if not files:
        missing_fixtures(f"{FIXTURES} (no fixture files)")
    assert len(files) > 1000, f"only {len(files)} fixture files under {FIXTURES}"
    seen = {(_where(path)[0], _where(path)[2]) for path in files}
    assert seen == {("baseline", "pass"), ("baseline", "fail"), ("restricted", "pass"), ("restricted", "fail")}
    versions = {_where(path)[1] for path in files}
    assert {"v1.0", "v1.34", "v1.35", f"v1.{CEILING}"} <= versions

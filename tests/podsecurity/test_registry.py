"""The table itself: rows that a new Kubernetes release adds must fit the engine."""

from __future__ import annotations

import pytest

from zuul_k8s.podsecurity import CHECKS
from zuul_k8s.podsecurity.registry import BY_ID, CEILING, Check, changes_of, fix_text
from zuul_k8s.podsecurity.versions import BASELINE, RESTRICTED


def test_ids_are_unique_and_levels_known() -> None:
    assert len(BY_ID) == len(CHECKS) == 19
    assert {check.level for check in CHECKS} == {BASELINE, RESTRICTED}


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.id)
def test_rows_are_well_formed(check: Check) -> None:
    sinces = [variant.since for variant in check.variants]
    assert sinces == sorted(set(sinces)), "variants must be oldest first, one per version"
    assert all(0 <= since <= CEILING for since in sinces)
    for variant in check.variants:
        for overridden in variant.overrides:
            assert check.level == RESTRICTED
            assert BY_ID[overridden].level == BASELINE
        text = fix_text(check, variant)
        assert text and "{" not in text


def test_changes_of_a_check_include_its_replacements() -> None:
    assert changes_of("procMount") == (0, 35)
    assert changes_of("seccompProfile_baseline") == (0, 19, 25)
    assert changes_of("sysctls") == (0, 27, 29, 32, 37)

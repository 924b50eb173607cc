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


def test_admitted_from_reads_the_relaxations_off_the_table() -> None:
    """The public helper `isolation` and the advice read instead of literal versions."""
    from zuul_k8s import podsecurity

    assert podsecurity.admitted_from("procMount", "user-namespace") == 35
    assert podsecurity.admitted_from("runAsNonRoot", "user-namespace") == 35
    assert podsecurity.admitted_from("runAsUser", "user-namespace") == 35
    assert podsecurity.admitted_from("allowPrivilegeEscalation", "windows") == 25
    assert podsecurity.admitted_from("procMount_restricted", "user-namespace") is None
    assert podsecurity.admitted_from("privileged", "windows") is None
    with pytest.raises(ValueError, match="unknown Pod Security check 'procmount'"):
        podsecurity.admitted_from("procmount", "user-namespace")
    with pytest.raises(ValueError, match="unknown relaxation 'hostUsers'"):
        podsecurity.admitted_from("procMount", "hostUsers")


def test_procmount_fix_names_the_version_the_table_relaxes_at() -> None:
    check = BY_ID["procMount"]
    for variant in check.variants:
        assert "admitted only at baseline from policy v1.35, and only with spec.hostUsers" in (
            fix_text(check, variant))


@pytest.mark.parametrize(("label", "minor"), [
    ("v1.30", 30), ("v1.0", 0), ("latest", 34), ("v1.36", 34),  # capped at the cluster's
    ("v1.035", 34), ("1.30", 34), ("v1.x", 34), ("v1.", 34), ("", 34), ("v1.3\u0663", 34),
])
def test_a_namespace_label_version_reads_as_upstream_reads_it(label: str, minor: int) -> None:
    """Invalid versions (leading zeros, no `v`, non-ASCII digits) mean latest (spec 2.2)."""
    from zuul_k8s.podsecurity.versions import label_minor

    assert label_minor(label, 34) == minor

"""The kit's Localhost seccomp profile: generated, not edited; the runtime default plus bwrap's needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.tools import fixture
from zuul_k8s import profiles
from zuul_k8s.profiles import seccomp, seccomp_default

REGENERATE = "python -m zuul_k8s.profiles.seccomp --write"
# moby's names for the architectures (`includes.arches`), per `uname -m`.
MOBY_ARCHES = {"x86_64": {"amd64", "x86", "x32"}, "aarch64": {"arm64", "arm"}}
ARCHES = seccomp.architectures()


def moby() -> dict[str, Any]:
    return json.loads(fixture("seccomp", "moby-default.json").read_text())


def applies_without_caps(rule: dict[str, Any], arch: str) -> bool:
    """Whether a moby rule holds for a container with no capabilities on `arch`."""
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    if includes.get("caps"):
        return False
    if includes.get("arches") and not set(includes["arches"]) & MOBY_ARCHES[arch]:
        return False
    return not (excludes.get("arches") and set(excludes["arches"]) & MOBY_ARCHES[arch])


def unconditional(profile: dict[str, Any]) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


@pytest.mark.parametrize("arch", ARCHES)
def test_committed_profile_is_the_generator_output(arch: str) -> None:
    committed = seccomp.generated_path(arch)
    assert committed.exists(), f"{committed} is missing; regenerate: {REGENERATE}"
    assert committed.read_text(encoding="utf-8") == seccomp.render(arch), (
        f"{committed} drifted from zuul_k8s/profiles/seccomp.py; regenerate: {REGENERATE}"
    )


def test_generator_is_deterministic() -> None:
    assert seccomp.render("x86_64") == seccomp.render("x86_64")
    assert seccomp.render("x86_64") != seccomp.render("aarch64")


@pytest.mark.parametrize("arch", ARCHES)
def test_profile_allows_all_the_runtime_default_allows_without_capabilities(arch: str) -> None:
    kit = seccomp.build(arch)
    kit_plain = unconditional(kit)
    kit_args = {(n, json.dumps(r["args"], sort_keys=True)) for r in kit["syscalls"]
                if r.get("args") for n in r["names"]}
    for rule in moby()["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW" or not applies_without_caps(rule, arch):
            continue
        if rule.get("args"):
            if set(rule["names"]) <= kit_plain:  # allowed outright: every argument is fine
                continue
            for name in rule["names"]:
                key = (name, json.dumps(rule["args"], sort_keys=True))
                assert key in kit_args, f"moby allows {name} with {rule['args']}, the kit does not"
        else:
            missing = set(rule["names"]) - kit_plain
            assert not missing, f"moby allows {sorted(missing)} on {arch}, the kit's profile not"


@pytest.mark.parametrize("arch", ARCHES)
def test_additions_over_the_runtime_default_are_exactly_bwraps(arch: str) -> None:
    default_allows = set()
    for rule in moby()["syscalls"]:
        if (rule["action"] == "SCMP_ACT_ALLOW" and applies_without_caps(rule, arch)
                and not rule.get("args")):
            default_allows |= set(rule["names"])
    added = unconditional(seccomp.build(arch)) - default_allows
    assert added == {"clone", "clone3", "mount", "pivot_root", "setns", "umount2", "unshare"}
    assert set(seccomp.BWRAP_SYSCALLS) == added


def test_the_runtime_default_refuses_what_bwrap_needs() -> None:
    """Why the profile exists: moby gates these on CAP_SYS_ADMIN (or lacks them)."""
    gated = set()
    for rule in moby()["syscalls"]:
        if "CAP_SYS_ADMIN" in (rule.get("includes") or {}).get("caps", []):
            gated |= set(rule["names"])
    assert set(seccomp.BWRAP_SYSCALLS) - gated == {"pivot_root"}
    assert set(seccomp_default.CAPABILITY_GATED["CAP_SYS_ADMIN"]) == gated


@pytest.mark.parametrize("arch", ARCHES)
def test_profile_is_plain_oci_with_one_rule_per_unconditional_name(arch: str) -> None:
    """containerd reads a Localhost profile as runtime-spec LinuxSeccomp: no moby conditions."""
    profile = seccomp.build(arch)
    assert set(profile) == {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "action", "args"}, rule
    names = [n for r in profile["syscalls"] if not r.get("args") for n in r["names"]]
    assert len(names) == len(set(names)), "a syscall in two unconditional rules"
    arch_map = {e["architecture"]: e["subArchitectures"] or [] for e in moby()["archMap"]}
    native = profile["architectures"][0]
    assert profile["architectures"] == [native, *arch_map[native]]


def test_locators_find_the_shipped_profiles() -> None:
    path = profiles.seccomp_profile_path("amd64")
    assert path == seccomp.generated_path("x86_64")
    assert (profiles.seccomp_root("x86_64") / profiles.SECCOMP_LOCALHOST_PROFILE) == path
    assert profiles.selinux_module_path().is_file()
    assert profiles.apparmor_profile_path().is_file()


def test_unknown_architecture_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: aarch64, x86_64"):
        seccomp.build("s390x")

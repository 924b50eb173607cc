"""Each check's edge cases: unset vs null vs empty, pod vs container values, init and
ephemeral containers, Windows and user-namespace pods, and the version boundaries.

Expectations come from shared/spec/pod-security.md (section numbers in the
test names' docstrings); the fixtures cover the common cases, these the corners.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from zuul_k8s.podsecurity import PolicyError, evaluate_pod
from zuul_k8s.podsecurity.registry import CEILING, selected

# The minimal pod that every level admits at every version (restricted needs
# all of this; spec 4.14-4.19).
RESTRICTED_OK_CONTAINER = {
    "name": "c",
    "image": "x",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
}


def restricted_pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [copy.deepcopy(RESTRICTED_OK_CONTAINER)],
    }
    base.update(spec)
    return base


def container(name: str = "c", **security: Any) -> dict[str, Any]:
    return {"name": name, "image": "x", "securityContext": security}


def denied(
    spec: dict[str, Any],
    level: str = "baseline",
    version: str = "latest",
    annotations: dict[str, Any] | None = None,
) -> set[str]:
    metadata = {"annotations": annotations} if annotations is not None else {}
    verdict = evaluate_pod(metadata, spec, level, version)
    assert verdict.allowed is (not verdict.denials)
    return {denial.check for denial in verdict.denials}


def only_denial(
    spec: dict[str, Any], level: str = "baseline", version: str = "latest", annotations: dict[str, Any] | None = None
) -> Any:
    metadata = {"annotations": annotations} if annotations is not None else {}
    verdict = evaluate_pod(metadata, spec, level, version)
    assert len(verdict.denials) == 1, verdict.message()
    return verdict.denials[0]


def test_restricted_base_pod_is_admitted_everywhere() -> None:
    for level in ("baseline", "restricted"):
        for minor in range(CEILING + 1):
            assert denied(restricted_pod(), level, f"v1.{minor}") == set()


# --- versions and selection (spec 2) -------------------------------------------------------


@pytest.mark.parametrize("version", ["latest", f"v1.{CEILING}", "v1.38", "v1.99"])
def test_latest_and_newer_versions_mean_the_ceiling(version: str) -> None:
    assert CEILING == 37
    verdict = evaluate_pod({}, {"containers": [container()]}, "baseline", version)
    assert verdict.version == "v1.37"


@pytest.mark.parametrize("version", ["1.35", "v1.035", "v1.", "v2.1", "V1.2", "v1.3 ", "", None, 35])
def test_malformed_versions_are_refused(version: Any) -> None:
    with pytest.raises(PolicyError, match=re.escape("expected 'latest' or 'v1.<minor>'")):
        evaluate_pod({}, {}, "baseline", version)


@pytest.mark.parametrize("level", ["Baseline", "", "strict", None])
def test_unknown_levels_are_refused(level: Any) -> None:
    with pytest.raises(PolicyError, match="unknown Pod Security level"):
        evaluate_pod({}, {}, level, "latest")


def test_privileged_level_admits_anything() -> None:
    spec = {"hostNetwork": True, "containers": [container(privileged=True, procMount="Unmasked")]}
    assert denied(spec, "privileged") == set()
    assert denied(spec, "baseline") == {"hostNamespaces", "privileged", "procMount"}


@pytest.mark.parametrize(
    ("level", "minors", "count"),
    [
        ("baseline", range(0, 34), 11),
        ("baseline", range(34, 38), 12),
        ("restricted", range(0, 8), 12),
        ("restricted", range(8, 23), 13),
        ("restricted", range(23, 34), 14),
        ("restricted", range(34, 38), 15),
    ],
)
def test_number_of_checks_per_version(level: str, minors: range, count: int) -> None:
    """Spec 2.6's closing counts."""
    for minor in minors:
        assert len(selected(level, minor)) == count, f"{level} v1.{minor}"


@pytest.mark.parametrize(
    ("minor", "runs", "not_runs"),
    [
        (
            18,
            {"seccompProfile_baseline", "capabilities_baseline", "procMount"},
            {"seccompProfile_restricted", "capabilities_restricted", "procMount_restricted"},
        ),
        (19, {"seccompProfile_restricted", "capabilities_baseline"}, {"seccompProfile_baseline"}),
        (22, {"capabilities_restricted"}, {"capabilities_baseline"}),
        (34, {"procMount"}, {"procMount_restricted"}),
        (35, {"procMount_restricted"}, {"procMount", "hostPathVolumes"}),
    ],
)
def test_restricted_overrides(minor: int, runs: set[str], not_runs: set[str]) -> None:
    """Spec 2.4: a restricted variant drops the baseline check it replaces."""
    ids = {check.id for check, _ in selected("restricted", minor)}
    assert runs <= ids
    assert not (not_runs & ids)


def test_baseline_never_drops_overridden_checks() -> None:
    ids = {check.id for check, _ in selected("baseline", CEILING)}
    assert {"procMount", "capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"} <= ids


def test_result_order_is_baseline_then_restricted_each_by_byte_order() -> None:
    """Spec 2.5: uppercase sorts first, so seLinuxOptions precedes seccompProfile_baseline."""
    spec = {
        "securityContext": {"seLinuxOptions": {"user": "u"}, "seccompProfile": {"type": "Unconfined"}, "runAsUser": 0},
        "containers": [container(privileged=True)],
    }
    verdict = evaluate_pod({}, spec, "restricted", "v1.23")
    assert [d.check for d in verdict.denials] == [
        "privileged",
        "seLinuxOptions",
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    ]
    baseline = evaluate_pod({}, spec, "baseline", "v1.23")
    assert [d.check for d in baseline.denials] == ["privileged", "seLinuxOptions", "seccompProfile_baseline"]


# --- unset, null and empty (spec 3.1, 10) --------------------------------------------------


@pytest.mark.parametrize(
    ("security", "denies"),
    [
        ({}, False),
        ({"seccompProfile": None}, False),
        ({"seccompProfile": {}}, True),  # set, with type "" which is not allowed
        ({"seccompProfile": {"type": None}}, True),
        ({"seccompProfile": {"type": ""}}, True),
        ({"seccompProfile": {"type": "Unconfined"}}, True),
        ({"seccompProfile": {"type": "runtimedefault"}}, True),  # case-sensitive
        ({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}, False),
    ],
)
def test_seccomp_field_unset_null_empty(security: dict[str, Any], denies: bool) -> None:
    for where in ("pod", "container"):
        if where == "pod":
            spec = {"securityContext": security, "containers": [container()]}
        else:
            spec = {"containers": [container(**security)]}
        assert ("seccompProfile_baseline" in denied(spec, "baseline", "v1.19")) is denies, where


def test_null_security_contexts_are_unset() -> None:
    spec = {
        "securityContext": None,
        "hostUsers": None,
        "os": None,
        "volumes": None,
        "containers": [{"name": "c", "image": "x", "securityContext": None, "ports": None}],
        "initContainers": None,
        "ephemeralContainers": None,
    }
    assert denied(spec, "baseline") == set()
    assert denied(spec, "restricted") == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    }


def test_booleans_count_only_when_literally_true() -> None:
    for value in (False, None, "true", 1):
        assert denied({"hostPID": value, "containers": [container(privileged=value)]}) == set()
    assert denied({"hostPID": True, "containers": [container(privileged=True)]}) == {"hostNamespaces", "privileged"}


def test_run_as_user_false_is_not_zero() -> None:
    """Spec 10: a YAML false must never be taken for runAsUser: 0."""
    pod = restricted_pod(
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": False,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    )
    assert denied(pod, "restricted", "v1.23") == set()
    pod["securityContext"]["runAsUser"] = 0
    assert denied(pod, "restricted", "v1.23") == {"runAsUser"}


def test_host_port_zero_and_unset_pass() -> None:
    ports = [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}, {"containerPort": 82, "hostPort": None}]
    assert denied({"containers": [{"name": "c", "ports": ports}]}) == set()
    ports.append({"containerPort": 83, "hostPort": 8083})
    ports.append({"containerPort": 84, "hostPort": 8083})
    denial = only_denial({"containers": [{"name": "c", "ports": ports}, {"name": "d", "ports": [{"hostPort": 9}]}]})
    assert denial.detail == 'containers "c", "d" use hostPorts 8083, 9'
    assert denial.fields == (
        "spec.containers[0].ports[3].hostPort",
        "spec.containers[0].ports[4].hostPort",
        "spec.containers[1].ports[0].hostPort",
    )


# --- container visiting: init and ephemeral (spec 3.2) ---------------------------------------


@pytest.mark.parametrize("field", ["initContainers", "containers", "ephemeralContainers"])
def test_every_container_list_is_visited(field: str) -> None:
    spec: dict[str, Any] = {"containers": [container("main")]}
    spec.setdefault(field, []).append(container("bad", privileged=True))
    denial = only_denial(spec)
    assert denial.check == "privileged"
    assert denial.detail == 'container "bad" must not set securityContext.privileged=true'
    index = len(spec[field]) - 1
    assert denial.fields == (f"spec.{field}[{index}].securityContext.privileged",)


def test_containers_are_named_in_visit_order() -> None:
    spec = {
        "ephemeralContainers": [container("debug", privileged=True)],
        "containers": [container("app", privileged=True)],
        "initContainers": [container("init", privileged=True)],
    }
    assert only_denial(spec).detail == (
        'containers "init", "app", "debug" must not set securityContext.privileged=true'
    )


def test_non_mapping_entries_are_ignored_not_fatal() -> None:
    spec = {
        "containers": ["oops", None, container(privileged=True)],
        "volumes": "nope",
        "securityContext": ["x"],
        "os": "windows",
    }
    assert denied(spec) == {"privileged"}


# --- procMount and the user-namespace relaxation (spec 3.4, 4.8, 4.16) ---------------------


@pytest.mark.parametrize(
    ("level", "version", "host_users", "allowed"),
    [
        ("baseline", "v1.34", False, False),
        ("baseline", "v1.35", False, True),
        ("baseline", "latest", False, True),
        ("baseline", "v1.35", True, False),
        ("baseline", "v1.35", None, False),
        ("baseline", "v1.35", 0, False),  # must be the boolean false
        ("baseline", "v1.35", "false", False),
        ("restricted", "v1.34", False, False),
        ("restricted", "v1.35", False, False),
        ("restricted", "latest", False, False),
    ],
)
def test_unmasked_proc_mount(level: str, version: str, host_users: Any, allowed: bool) -> None:
    pod = restricted_pod(hostUsers=host_users)
    pod["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    checks = denied(pod, level, version)
    assert (checks == set()) is allowed, checks
    if not allowed:
        assert checks & {"procMount", "procMount_restricted"}


@pytest.mark.parametrize(
    ("value", "denies"), [(None, False), ("Default", False), ("", True), ("Unmasked", True), ("default", True)]
)
def test_proc_mount_values(value: Any, denies: bool) -> None:
    assert ("procMount" in denied({"containers": [container(procMount=value)]})) is denies


def test_proc_mount_detail_sorts_distinct_values() -> None:
    spec = {
        "containers": [
            container("a", procMount="Unmasked"),
            container("b", procMount="X"),
            container("c", procMount="Unmasked"),
        ]
    }
    assert only_denial(spec).detail == (
        'containers "a", "b", "c" must not set securityContext.procMount to "Unmasked", "X"'
    )


@pytest.mark.parametrize("check", ["runAsNonRoot", "runAsUser"])
def test_root_is_admitted_at_restricted_from_v1_35_in_a_user_namespace(check: str) -> None:
    pod = restricted_pod()
    pod["securityContext"] = {"runAsNonRoot": False, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}
    assert check in denied(pod, "restricted", "v1.34")
    assert check in denied(pod, "restricted", "v1.35")  # hostUsers unset: no relaxation
    pod["hostUsers"] = False
    assert check in denied(pod, "restricted", "v1.34")
    assert denied(pod, "restricted", "v1.35") == set()


# --- runAsNonRoot precedence (spec 4.17) ---------------------------------------------------


@pytest.mark.parametrize(
    ("pod_value", "container_values", "allowed"),
    [
        (True, [None, None], True),
        (None, [True, True], True),
        (None, [True, None], False),
        (True, [True, False], False),  # an explicit container false fails under pod true
        (False, [True, True], False),  # a pod false fails even when every container says true
        (None, [], True),
        (False, [], False),
    ],
)
def test_run_as_non_root_precedence(pod_value: Any, container_values: list[Any], allowed: bool) -> None:
    containers = [{**copy.deepcopy(RESTRICTED_OK_CONTAINER), "name": f"c{i}"} for i in range(len(container_values))]
    for item, value in zip(containers, container_values, strict=True):
        item["securityContext"]["runAsNonRoot"] = value
    pod = restricted_pod(containers=containers)
    pod["securityContext"]["runAsNonRoot"] = pod_value
    assert ("runAsNonRoot" not in denied(pod, "restricted")) is allowed


def test_run_as_non_root_detail_names_explicit_and_missing() -> None:
    pod = restricted_pod(
        containers=[
            {**copy.deepcopy(RESTRICTED_OK_CONTAINER), "name": "a"},
            {**copy.deepcopy(RESTRICTED_OK_CONTAINER), "name": "b"},
        ]
    )
    pod["securityContext"]["runAsNonRoot"] = None
    pod["containers"][0]["securityContext"]["runAsNonRoot"] = False
    denial = only_denial(pod, "restricted")
    assert denial.detail == (
        'container "a" must not set securityContext.runAsNonRoot=false; '
        'pod or container "b" must set securityContext.runAsNonRoot=true'
    )
    assert denial.fields == (
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[1].securityContext.runAsNonRoot",
    )


def test_run_as_user_has_no_precedence() -> None:
    """Spec 4.18: a container's 1000 does not excuse the pod's 0; negative uids pass."""
    pod = restricted_pod()
    pod["securityContext"]["runAsUser"] = 0
    pod["containers"][0]["securityContext"]["runAsUser"] = 1000
    assert only_denial(pod, "restricted").detail == "pod must not set runAsUser=0"
    pod["securityContext"]["runAsUser"] = -1
    assert denied(pod, "restricted") == set()
    assert denied(pod, "restricted", "v1.22") == set()  # runAsUser starts at v1.23
    pod["securityContext"]["runAsUser"] = 0
    assert denied(pod, "restricted", "v1.22") == set()


# --- seccomp (spec 4.10, 4.19) -------------------------------------------------------------


def test_seccomp_restricted_container_inherits_only_a_valid_pod_profile() -> None:
    pod = restricted_pod()
    pod["securityContext"]["seccompProfile"] = None
    denial = only_denial(pod, "restricted")
    assert denial.detail == (
        'pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
    )
    pod["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Localhost"}
    assert denied(pod, "restricted") == set()
    pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert only_denial(pod, "restricted").detail == (
        'pod must not set securityContext.seccompProfile.type to "Unconfined"'
    )


def test_seccomp_container_value_is_judged_on_its_own() -> None:
    pod = restricted_pod()
    pod["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert denied(pod, "restricted") == {"seccompProfile_restricted"}
    assert denied(pod, "baseline") == {"seccompProfile_baseline"}


@pytest.mark.parametrize(
    ("annotations", "v1_18_denies"),
    [
        ({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}, True),
        ({"seccomp.security.alpha.kubernetes.io/pod": ""}, True),  # empty is forbidden here
        ({"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}, False),
        ({"seccomp.security.alpha.kubernetes.io/pod": "docker/default"}, False),
        ({"seccomp.security.alpha.kubernetes.io/pod": "localhost/p.json"}, False),
        ({"container.seccomp.security.alpha.kubernetes.io/c": "unconfined"}, True),
        ({"container.seccomp.security.alpha.kubernetes.io/other": "unconfined"}, False),
    ],
)
def test_seccomp_annotations_until_v1_18(annotations: dict[str, str], v1_18_denies: bool) -> None:
    spec = {"containers": [container("c")], "securityContext": {"seccompProfile": {"type": "X"}}}
    # v1.0-v1.18 read only annotations; the field is ignored.
    assert ("seccompProfile_baseline" in denied(spec, "baseline", "v1.18", annotations)) is v1_18_denies
    assert ("seccompProfile_baseline" in denied(spec, "restricted", "v1.18", annotations)) is v1_18_denies
    # From v1.19 annotations are ignored and the field decides.
    assert "seccompProfile_baseline" in denied(spec, "baseline", "v1.19", annotations)
    spec["securityContext"] = {}
    assert denied(spec, "baseline", "v1.19", annotations) == set()


# --- AppArmor (spec 4.1) -------------------------------------------------------------------


def test_app_armor_pod_and_container_are_judged_alone() -> None:
    spec = {
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
        "containers": [container(appArmorProfile={"type": "Localhost"})],
    }
    denial = only_denial(spec)
    assert denial.check == "appArmorProfile"
    assert denial.reason == "forbidden AppArmor profile"
    assert denial.detail == 'pod must not set AppArmor profile type to "Unconfined"'
    assert denied(spec, version="v1.0") == {"appArmorProfile"}  # fields apply back to v1.0


@pytest.mark.parametrize(
    ("value", "denies"),
    [
        ("", False),
        ("runtime/default", False),
        ("localhost/zuul", False),
        ("unconfined", True),
        ("Runtime/Default", True),
        (None, False),
    ],
)
def test_app_armor_annotations(value: Any, denies: bool) -> None:
    annotations = {"container.apparmor.security.beta.kubernetes.io/no-such-container": value}
    assert ("appArmorProfile" in denied({"containers": [container()]}, annotations=annotations)) is denies


def test_app_armor_detail_lists_types_then_annotations() -> None:
    spec = {"containers": [container("a", appArmorProfile={}), container("b", appArmorProfile={"type": "Unconfined"})]}
    annotations = {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}
    denial = only_denial(spec, annotations=annotations)
    assert denial.reason == "forbidden AppArmor profiles"
    assert denial.detail == (
        'containers "a", "b" and annotation must not set AppArmor profile type to '
        '"", "Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined""'
    )
    assert denial.fields[-1] == ('metadata.annotations["container.apparmor.security.beta.kubernetes.io/a"]')


# --- capabilities (spec 4.2, 4.15) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("add", "denies"),
    [
        (["SETFCAP", "CHOWN", "NET_BIND_SERVICE"], False),
        (["NET_RAW"], True),
        (["CAP_CHOWN"], True),
        (["chown"], True),
        ([], False),
        (None, False),
        (["SYS_ADMIN"], True),
    ],
)
def test_capabilities_baseline(add: Any, denies: bool) -> None:
    spec = {"containers": [container(capabilities={"add": add, "drop": ["SYS_ADMIN"]})]}
    assert ("capabilities_baseline" in denied(spec)) is denies


def test_capabilities_restricted_needs_drop_all_exactly() -> None:
    pod = restricted_pod()
    caps = pod["containers"][0]["securityContext"]["capabilities"]
    for drop in (["all"], ["CHOWN", "KILL"], [], None):
        caps["drop"] = drop
        assert denied(pod, "restricted") == {"capabilities_restricted"}, drop
    pod["containers"][0]["securityContext"]["capabilities"] = {}
    assert denied(pod, "restricted") == {"capabilities_restricted"}
    del pod["containers"][0]["securityContext"]["capabilities"]
    assert denied(pod, "restricted") == {"capabilities_restricted"}


def test_capabilities_restricted_allows_only_net_bind_service() -> None:
    pod = restricted_pod()
    caps = pod["containers"][0]["securityContext"]["capabilities"]
    caps["add"] = ["NET_BIND_SERVICE"]
    assert denied(pod, "restricted") == set()
    caps["add"] = ["SETFCAP", "CHOWN"]
    assert only_denial(pod, "restricted").detail == (
        'container "c" must not include "CHOWN", "SETFCAP" in securityContext.capabilities.add'
    )
    # Before v1.22 restricted judged added capabilities by the baseline list.
    assert denied(pod, "restricted", "v1.21") == set()
    caps["add"] = ["SYS_ADMIN"]
    assert denied(pod, "restricted", "v1.21") == {"capabilities_baseline"}


def test_capabilities_restricted_detail_has_both_parts() -> None:
    pod = restricted_pod(containers=[container("a", allowPrivilegeEscalation=False, capabilities={"add": ["KILL"]})])
    assert only_denial(pod, "restricted").detail == (
        'container "a" must set securityContext.capabilities.drop=["ALL"]; '
        'container "a" must not include "KILL" in securityContext.capabilities.add'
    )


# --- Windows pods (spec 3.3, 7.1) ----------------------------------------------------------


WINDOWS_EXEMPT = {"allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted"}


def test_windows_pods_skip_three_restricted_checks_from_v1_25() -> None:
    spec = {
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "c", "image": "x"}],
    }
    assert denied(spec, "restricted", "v1.25") == set()
    assert denied(spec, "restricted", "v1.24") == WINDOWS_EXEMPT
    spec["os"] = {"name": "Windows"}  # not windows: exact match only
    assert denied(spec, "restricted", "v1.25") == WINDOWS_EXEMPT
    spec["os"] = {"name": "linux"}
    assert denied(spec, "restricted", "v1.25") == WINDOWS_EXEMPT


def test_windows_does_not_relax_baseline() -> None:
    """Spec 7.1: a Windows pod adding SYS_ADMIN is denied at baseline, not at restricted v1.25+."""
    spec = {
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True},
        "containers": [container(capabilities={"add": ["SYS_ADMIN"]})],
    }
    assert denied(spec, "baseline") == {"capabilities_baseline"}
    assert denied(spec, "restricted") == set()


def test_windows_host_process_is_denied_for_any_os() -> None:
    spec = {"containers": [container(windowsOptions={"hostProcess": True})]}
    assert denied(spec) == {"windowsHostProcess"}
    spec = {
        "os": {"name": "windows"},
        "securityContext": {"windowsOptions": {"hostProcess": True}},
        "containers": [container(windowsOptions={"hostProcess": False})],
    }
    assert only_denial(spec).detail == ("pod must not set securityContext.windowsOptions.hostProcess=true")


# --- SELinux and sysctls by version (spec 4.9, 4.11) ---------------------------------------


def test_selinux_container_engine_t_from_v1_31() -> None:
    spec = {"containers": [container(seLinuxOptions={"type": "container_engine_t", "level": "s0:c1,c2"})]}
    assert denied(spec, "baseline", "v1.30") == {"seLinuxOptions"}
    assert denied(spec, "baseline", "v1.31") == set()


@pytest.mark.parametrize(
    ("options", "denies"),
    [
        ({}, False),
        ({"type": ""}, False),
        ({"type": "container_t"}, False),
        ({"level": "anything"}, False),
        ({"user": "system_u"}, True),
        ({"role": "r"}, True),
        ({"type": "spc_t"}, True),
    ],
)
def test_selinux_options(options: dict[str, Any], denies: bool) -> None:
    assert ("seLinuxOptions" in denied({"securityContext": {"seLinuxOptions": options}})) is denies


def test_selinux_detail() -> None:
    spec = {
        "securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "u"}},
        "containers": [container(seLinuxOptions={"type": "unconfined_t", "role": "r"})],
    }
    denial = only_denial(spec, version="v1.30")
    assert denial.detail == (
        'pod and container "c" set forbidden securityContext.seLinuxOptions: '
        'types "spc_t", "unconfined_t"; user may not be set; role may not be set'
    )
    assert denial.fields == (
        "spec.securityContext.seLinuxOptions.type",
        "spec.securityContext.seLinuxOptions.user",
        "spec.containers[0].securityContext.seLinuxOptions.type",
        "spec.containers[0].securityContext.seLinuxOptions.role",
    )


@pytest.mark.parametrize(
    ("name", "since"),
    [
        ("kernel.shm_rmid_forced", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ],
)
def test_sysctls_by_version(name: str, since: int) -> None:
    spec = {"securityContext": {"sysctls": [{"name": name, "value": "1"}]}}
    if since:
        assert denied(spec, "baseline", f"v1.{since - 1}") == {"sysctls"}
    assert denied(spec, "baseline", f"v1.{since}") == set()


def test_sysctls_detail_keeps_spec_order_and_slash_form_is_forbidden() -> None:
    spec = {
        "securityContext": {
            "sysctls": [
                {"name": "net/ipv4/tcp_syncookies"},
                {"name": "kernel.shm_rmid_forced"},
                {"name": "b"},
                {"name": "b"},
            ]
        }
    }
    denial = only_denial(spec)
    assert denial.detail == "net/ipv4/tcp_syncookies, b, b"
    assert denial.fields[0] == "spec.securityContext.sysctls[0].name"


# --- volumes (spec 1.1, 4.4, 4.13, 7.2) ----------------------------------------------------


def test_volume_without_source_defaults_to_empty_dir_without_mutating_input() -> None:
    pod = restricted_pod(volumes=[{"name": "scratch"}, {"name": "nulls", "hostPath": None}])
    before = copy.deepcopy(pod)
    assert denied(pod, "restricted") == set()
    assert pod == before


def test_volume_with_allowed_and_forbidden_source() -> None:
    pod = restricted_pod(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}])
    assert denied(pod, "restricted") == set()
    assert denied(pod, "baseline") == {"hostPathVolumes"}


def test_restricted_volume_types_detail() -> None:
    pod = restricted_pod(
        volumes=[
            {"name": "a", "hostPath": {"path": "/"}},
            {"name": "b", "nfs": {}},
            {"name": "c", "somethingNew": {}},
            {"name": "d", "secret": {"secretName": "s"}},
        ]
    )
    denial = only_denial(pod, "restricted")
    assert denial.detail == ('volumes "a", "b", "c" use restricted volume types "hostPath", "nfs", "unknown"')
    assert denial.fields == ("spec.volumes[0].hostPath", "spec.volumes[1].nfs", "spec.volumes[2]")


# --- probes and lifecycle hosts (spec 4.6) -------------------------------------------------


def test_probe_and_lifecycle_hosts_from_v1_34() -> None:
    probes = {
        "livenessProbe": {"httpGet": {"host": "", "port": 80}},
        "readinessProbe": {"exec": {"command": ["true"]}},
        "startupProbe": {"tcpSocket": {"port": 80}},
        "lifecycle": {
            "preStop": {"httpGet": {"host": "localhost", "port": 80}},
            "postStart": {"tcpSocket": {"host": "::1", "port": 1}},
        },
    }
    spec = {"containers": [{"name": "c", "image": "x", **probes}]}
    assert denied(spec, "baseline", "v1.33") == set()
    denial = only_denial(spec, "baseline", "v1.34")
    assert denial.check == "hostProbesAndHostLifecycle"
    assert denial.detail == 'container "c" uses probe or lifecycle hosts "::1", "localhost"'
    assert denial.fields == (
        "spec.containers[0].lifecycle.postStart.tcpSocket.host",
        "spec.containers[0].lifecycle.preStop.httpGet.host",
    )


def test_host_namespaces_detail_order() -> None:
    spec = {"hostIPC": True, "hostNetwork": True, "hostPID": False}
    assert only_denial(spec).detail == "hostNetwork=true, hostIPC=true"


def test_allow_privilege_escalation_must_be_explicitly_false() -> None:
    for value in (None, True, "false", 0):
        pod = restricted_pod()
        pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = value
        assert denied(pod, "restricted") == {"allowPrivilegeEscalation"}, value
        assert denied(pod, "restricted", "v1.7") == set()  # the check starts at v1.8

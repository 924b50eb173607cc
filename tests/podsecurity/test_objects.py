"""Objects in, verdicts and findings out: every pod-making kind, the paths inside
each, and the `findings` seam that `zuul-k8s validate` calls."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zuul_k8s.findings import Severity
from zuul_k8s.podsecurity import evaluate_object, evaluate_pod, findings
from zuul_k8s.workloads import POD_TEMPLATE_PATHS

API_VERSIONS = {
    "Pod": "v1",
    "PodTemplate": "v1",
    "ReplicationController": "v1",
    "ReplicaSet": "apps/v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def wrap(kind: str, pod: dict[str, Any], name: str = "obj") -> dict[str, Any]:
    """An object of `kind` whose pod template is `pod` ({metadata, spec})."""
    node: dict[str, Any] = copy.deepcopy(pod)
    for key in reversed(POD_TEMPLATE_PATHS[kind]):
        node = {key: node}
    return {
        "apiVersion": API_VERSIONS[kind],
        "kind": kind,
        **{k: v for k, v in node.items() if k != "metadata"},
        "metadata": {"name": name, **(node.get("metadata") or {})},
    }


def executor_pod(host_users: Any = False) -> dict[str, Any]:
    """The pod the kit renders for a root executor (design.md, Rendered objects)."""
    return {
        "metadata": {"annotations": {"zuul-k8s/checksum": "abc"}},
        "spec": {
            "hostUsers": host_users,
            "securityContext": {
                "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/zuul-executor.json"}
            },
            "volumes": [{"name": "state"}],
            "containers": [
                {
                    "name": "zuul-executor",
                    "image": "zuul/zuul-executor",
                    "securityContext": {
                        "procMount": "Unmasked",
                        "allowPrivilegeEscalation": False,
                        "runAsUser": 0,
                        "capabilities": {"drop": ["ALL"], "add": ["SETFCAP"]},
                    },
                }
            ],
        },
    }


def test_every_kind_is_covered() -> None:
    assert set(API_VERSIONS) == set(POD_TEMPLATE_PATHS)


@pytest.mark.parametrize("kind", sorted(POD_TEMPLATE_PATHS))
def test_pod_template_of_each_kind_is_judged(kind: str) -> None:
    pod = {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]},
    }
    obj = wrap(kind, pod)
    verdict = evaluate_object(obj, "baseline", "latest")
    assert verdict is not None
    assert [d.check for d in verdict.denials] == ["appArmorProfile", "privileged"]
    prefix = "".join(f"{key}." for key in POD_TEMPLATE_PATHS[kind])
    assert verdict.denials[1].fields == (f"{prefix}spec.containers[0].securityContext.privileged",)
    assert verdict.denials[0].fields == (
        f'{prefix}metadata.annotations["container.apparmor.security.beta.kubernetes.io/c"]',
    )
    [finding] = [f for f in findings([obj], "baseline", "latest") if f.rule == "privileged"]
    assert (finding.kind, finding.name, finding.path) == (
        kind,
        "obj",
        f"{prefix}spec.containers[0].securityContext.privileged",
    )


def test_cron_job_path() -> None:
    obj = wrap("CronJob", {"spec": {"hostPID": True}})
    [finding] = findings([obj], "baseline", "v1.30")
    assert finding.path == "spec.jobTemplate.spec.template.spec.hostPID"
    assert finding.message == 'violates PodSecurity "baseline:v1.30": host namespaces (hostPID=true)'


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "kind": "Service"},
        {"kind": 3},
        {},
    ],
)
def test_objects_that_make_no_pods(obj: dict[str, Any]) -> None:
    assert evaluate_object(obj, "restricted", "latest") is None
    assert findings([obj], "restricted", "latest") == []


def test_findings_ignore_non_objects() -> None:
    assert findings(["text", None, 3, [1]], "baseline", "latest") == []


def test_executor_at_baseline_before_v1_35_explains_the_upgrade_path() -> None:
    objs = [
        wrap("Deployment", executor_pod()),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}},
    ]
    for version in ("v1.30", "v1.33", "v1.34"):
        [finding] = findings(objs, "baseline", version)
        assert finding.severity is Severity.ERROR
        assert finding.source == "podsecurity"
        assert finding.rule == "procMount"
        assert (finding.kind, finding.name) == ("Deployment", "obj")
        assert finding.path == "spec.template.spec.containers[0].securityContext.procMount"
        assert '"zuul-executor"' in finding.message
        assert "admitted at baseline only from policy v1.35 (with hostUsers: false)" in (finding.message)
        # Every version named comes from the table; none that Pod Security does not decide
        # (which releases have the user-namespace gates on is validate's to say).
        assert set(re.findall(r"\b1\.(\d+)", finding.fix)) == {"35"}
        assert "until the cluster runs Kubernetes 1.35" in finding.fix
        assert "enforce `privileged`" in finding.fix
        assert "warn" in finding.fix and "audit" in finding.fix
        assert "enforce-version: v1.35" in finding.fix
    for version in ("v1.35", "v1.36", "latest"):
        assert findings(objs, "baseline", version) == []


def test_unmasked_without_user_namespace_gets_no_upgrade_advice() -> None:
    """No policy version admits Unmasked without hostUsers: false; don't suggest one."""
    [finding] = findings([wrap("StatefulSet", executor_pod(host_users=None))], "baseline", "v1.34")
    assert finding.rule == "procMount"
    assert "v1.35" in finding.fix and "hostUsers: false" in finding.fix
    assert "privileged" not in finding.fix
    assert "admitted at baseline only from" not in finding.message


def test_restricted_never_admits_the_executor() -> None:
    rules = {f.rule for f in findings([wrap("Deployment", executor_pod())], "restricted", "latest")}
    assert rules == {"capabilities_restricted", "procMount_restricted"}
    [proc] = [
        f
        for f in findings([wrap("Deployment", executor_pod())], "restricted", "latest")
        if f.rule == "procMount_restricted"
    ]
    assert "admits it" not in proc.message  # no newer version helps


def test_generic_newer_version_advice() -> None:
    pod = {"spec": {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}}
    [finding] = findings([wrap("Pod", pod)], "baseline", "v1.30")
    assert finding.message.endswith("; policy v1.31 admits it")
    assert "enforce-version: v1.31" in finding.fix
    # The fix names the types allowed at the evaluated version, from the table.
    assert "container_t" in finding.fix
    assert "container_engine_t" not in finding.fix


def test_fix_lists_the_values_of_the_selected_variant() -> None:
    pod = {"spec": {"securityContext": {"sysctls": [{"name": "vm.overcommit_memory"}]}}}
    [old] = findings([wrap("Pod", pod)], "baseline", "v1.26")
    [new] = findings([wrap("Pod", pod)], "baseline", "latest")
    assert "net.ipv4.tcp_notsent_lowat" not in old.fix
    assert "net.ipv4.tcp_notsent_lowat" in new.fix


def test_evaluation_does_not_change_the_callers_object() -> None:
    obj = wrap("Deployment", executor_pod())
    before = copy.deepcopy(obj)
    findings([obj], "restricted", "v1.20")
    evaluate_object(obj, "baseline", "latest")
    assert obj == before


# --- robustness: any YAML shape is judged without an exception --------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False, allow_infinity=True),  # NaN != NaN would fail `spec == before`
    st.sampled_from(["", "Unmasked", "Default", "RuntimeDefault", "windows", "ALL", "unconfined", "c"]),
    # What else YAML's safe loader makes: bytes (!!binary), dates, sets (!!set, unhashable).
    st.binary(max_size=3),
    st.dates(),
    st.frozensets(st.sampled_from(["ALL", "SYS_ADMIN"]), max_size=2).map(set),
)
_keys = st.sampled_from(
    [
        "name",
        "securityContext",
        "privileged",
        "procMount",
        "capabilities",
        "add",
        "drop",
        "seccompProfile",
        "type",
        "runAsNonRoot",
        "runAsUser",
        "hostUsers",
        "os",
        "volumes",
        "hostPath",
        "emptyDir",
        "ports",
        "hostPort",
        "containers",
        "initContainers",
        "ephemeralContainers",
        "sysctls",
        "seLinuxOptions",
        "user",
        "appArmorProfile",
        "windowsOptions",
        "hostProcess",
        "livenessProbe",
        "httpGet",
        "host",
        "lifecycle",
        "preStop",
    ]
)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_keys, children, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    spec=_json,
    annotations=st.dictionaries(
        st.sampled_from(
            ["container.apparmor.security.beta.kubernetes.io/c", "seccomp.security.alpha.kubernetes.io/pod", "other"]
        ),
        _scalars,
    ),
)
def test_any_shape_is_judged_deterministically(spec: Any, annotations: dict[str, Any]) -> None:
    before = copy.deepcopy(spec)
    for level in ("baseline", "restricted"):
        for version in ("v1.0", "v1.18", "v1.25", "v1.34", "latest"):
            first = evaluate_pod({"annotations": annotations}, spec, level, version)
            assert first == evaluate_pod({"annotations": annotations}, spec, level, version)
            assert first.allowed is (not first.denials)
            assert all(d.reason and d.fields for d in first.denials)
    assert evaluate_pod({}, spec, "privileged", "latest").allowed
    assert spec == before


# Every field the checks read, in its place in a pod, holding any value: a list where
# a string goes (`capabilities.add: [[SYS_ADMIN]]`), a number, a mapping, a set. The
# free-form strategy above rarely nests deep enough to reach these slots.
_any = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_keys, children, max_size=3)
    ),
    max_leaves=6,
)


def _slot(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's well-typed value, or any value at all."""
    return st.one_of(value, _any)


def _mostly(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A structural field: well-typed three times in four, so the leaves get reached."""
    return st.one_of(value, value, value, _any)


def _list_of(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _mostly(st.lists(st.one_of(item, _any), max_size=3))


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Every key present, so the deep slots get reached; null (one of the values) is unset.
    return _mostly(st.fixed_dictionaries(fields))


_words = st.sampled_from(["ALL", "SETFCAP", "SYS_ADMIN", "Unmasked", "Default", "RuntimeDefault",
                          "Localhost", "Unconfined", "container_engine_t", "spc_t", ""])
_profile = _object(type=_slot(_words), localhostProfile=_slot(_words))
_security = dict(
    seccompProfile=_profile,
    appArmorProfile=_profile,
    seLinuxOptions=_object(type=_slot(_words), user=_slot(_words), role=_slot(_words)),
    windowsOptions=_object(hostProcess=_slot(st.booleans())),
    runAsNonRoot=_slot(st.booleans()),
    runAsUser=_slot(st.integers(-1, 10001)),
)
_handler = _object(httpGet=_object(host=_slot(_words)), tcpSocket=_object(host=_slot(_words)))
_container = _object(
    name=_slot(_words),
    ports=_list_of(_object(hostPort=_slot(st.integers(0, 9)))),
    livenessProbe=_handler,
    lifecycle=_object(preStop=_handler, postStart=_handler),
    securityContext=_object(
        privileged=_slot(st.booleans()),
        allowPrivilegeEscalation=_slot(st.booleans()),
        procMount=_slot(_words),
        capabilities=_object(add=_list_of(_words), drop=_list_of(_words)),
        **_security,
    ),
)
_pod_spec = _object(
    hostUsers=_slot(st.booleans()),
    hostNetwork=_slot(st.booleans()),
    hostPID=_slot(st.booleans()),
    os=_object(name=_slot(st.sampled_from(["linux", "windows"]))),
    containers=_list_of(_container),
    initContainers=_list_of(_container),
    ephemeralContainers=_list_of(_container),
    volumes=_list_of(_object(name=_slot(_words), hostPath=_any, emptyDir=_any, nfs=_any)),
    securityContext=_object(
        sysctls=_list_of(_object(name=_slot(st.sampled_from(["kernel.shm_rmid_forced", "vm.x"])))),
        **_security,
    ),
)


@settings(max_examples=400, deadline=None)
@given(spec=_pod_spec, annotations=st.dictionaries(
    st.sampled_from(["container.apparmor.security.beta.kubernetes.io/c",
                     "seccomp.security.alpha.kubernetes.io/pod"]), _scalars))
def test_any_value_in_any_field_is_judged(spec: Any, annotations: dict[str, Any]) -> None:
    """Ill-typed values where the checks read: judged (a non-string is in no allowed list,
    so it is denied), never a TypeError; findings() as `validate` calls it, too."""
    before = copy.deepcopy(spec)
    for level in ("baseline", "restricted"):
        for version in ("v1.0", "v1.18", "v1.25", "v1.34", "latest"):
            verdict = evaluate_pod({"annotations": annotations}, spec, level, version)
            assert verdict.allowed is (not verdict.denials)
            assert all(d.reason and d.fields for d in verdict.denials)
            findings([wrap("Deployment", {"metadata": {"annotations": annotations}, "spec": spec})],
                     level, version)
    assert spec == before


@pytest.mark.parametrize(
    "add", [[["SYS_ADMIN"]], [{"name": "CHOWN"}], [7], [True], [None], [["CHOWN"]], [{"CHOWN"}]]
)
def test_a_capability_that_is_not_a_string_is_denied(add: list[Any]) -> None:
    """Not in the allowed list, whatever it holds: even `[CHOWN]`, a list holding an allowed name."""
    pod = {"spec": {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": add}}}]}}
    for level, check in (("baseline", "capabilities_baseline"), ("restricted", "capabilities_restricted")):
        verdict = evaluate_pod({}, pod["spec"], level, "latest")
        assert check in {d.check for d in verdict.denials}
        [denial] = [d for d in verdict.denials if d.check == check]
        assert "spec.containers[0].securityContext.capabilities.add[0]" in denial.fields


def test_a_procmount_that_is_not_a_string_is_denied() -> None:
    pod = {"hostUsers": False, "containers": [{"name": "c", "securityContext": {"procMount": ["Default"]}}]}
    verdict = evaluate_pod({}, pod, "baseline", "v1.34")
    assert [d.check for d in verdict.denials] == ["procMount"]

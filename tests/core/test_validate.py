"""Validation: each isolation rule broken one at a time, other deployers' manifests, the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config, zuul_k8s
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.render import render
from zuul_k8s.validate import Target, validate

MANIFESTS = Path(__file__).parent / "manifests"
POD = "spec.template.spec"
C0 = f"{POD}.containers[0]"

Obj = dict[str, Any]


def _objects(**sections: Any) -> list[Obj]:
    return render(config(**sections))


def _pod_spec(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]


def _context(objects: list[Obj]) -> Obj:
    return _pod_spec(objects)["containers"][0]["securityContext"]


def _errors(findings: list[Finding], source: str | None = None) -> set[tuple[str, str]]:
    return {(f.rule, f.path) for f in findings
            if f.severity is Severity.ERROR and (source is None or f.source == source)}


def test_default_render_has_no_findings() -> None:
    assert validate(_objects(), Target(35, "baseline")) == []


BREAKS: list[tuple[str, Callable[[list[Obj]], None], str, str]] = [
    ("hostUsers unset", lambda o: _pod_spec(o).pop("hostUsers"), "hostUsers", f"{POD}.hostUsers"),
    ("hostUsers true", lambda o: _pod_spec(o).update(hostUsers=True), "hostUsers", f"{POD}.hostUsers"),
    ("procMount Default", lambda o: _context(o).update(procMount="Default"), "procMount",
     f"{C0}.securityContext.procMount"),
    ("privileged", lambda o: _context(o).update(privileged=True), "privileged",
     f"{C0}.securityContext.privileged"),
    ("SYS_ADMIN added", lambda o: _context(o)["capabilities"].update(add=["SYS_ADMIN"]), "capabilities",
     f"{C0}.securityContext.capabilities.add"),
    ("SETFCAP for uid 10001", lambda o: _context(o)["capabilities"].update(add=["SETFCAP"]), "capabilities",
     f"{C0}.securityContext.capabilities.add"),
    ("escalation allowed", lambda o: _context(o).update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation", f"{C0}.securityContext.allowPrivilegeEscalation"),
    ("RuntimeDefault seccomp", lambda o: _pod_spec(o)["securityContext"].update(seccompProfile={"type": "RuntimeDefault"}),
     "seccomp", f"{POD}.securityContext.seccompProfile.type"),
    ("RuntimeDefault on the container", lambda o: _context(o).update(seccompProfile={"type": "RuntimeDefault"}),
     "seccomp", f"{C0}.securityContext.seccompProfile.type"),
    ("grace period on the container", lambda o: _pod_spec(o)["containers"][0].update(terminationGracePeriodSeconds=60),
     "gracePeriodOnContainer", f"{C0}.terminationGracePeriodSeconds"),
    ("root without SETFCAP", lambda o: _pod_spec(o)["securityContext"].update(runAsUser=0, runAsNonRoot=False),
     "rootNeedsSetfcap", f"{C0}.securityContext.capabilities.add"),
]


@pytest.mark.parametrize(("case", "breaker", "rule", "path"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_contract_rule_is_caught_with_its_path(case: str, breaker: Callable[[list[Obj]], None],
                                                    rule: str, path: str) -> None:
    objects = _objects()
    breaker(objects)
    findings = validate(objects, Target(35, "baseline"))
    assert (rule, path) in _errors(findings, "contract"), findings
    assert all(f.fix for f in findings)


def test_unconfined_seccomp_is_a_warning_in_the_contract() -> None:
    objects = _objects(isolation={"seccomp": "Unconfined"})
    contract = [f for f in validate(objects, Target(35, "baseline")) if f.source == "contract"]
    assert [(f.severity, f.rule) for f in contract] == [(Severity.WARNING, "seccomp")]


@pytest.mark.parametrize(("minor", "severity"), [(33, None), (32, Severity.WARNING), (31, Severity.WARNING),
                                                 (30, Severity.ERROR), (25, Severity.ERROR)])
def test_version_gates(minor: int, severity: Severity | None) -> None:
    found = [f for f in validate(_objects(), Target(minor, "privileged")) if f.rule == "kubernetesVersion"]
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity is Severity.WARNING:
        assert "UserNamespacesSupport" in found[0].fix and "ProcMountType" in found[0].fix


def test_openapi_reports_every_error_with_its_path() -> None:
    objects = _objects()
    spec = _pod_spec(objects)
    spec["containers"][0]["securityContext"]["bogus"] = True
    spec["replicas"] = 1
    spec["hostUsers"] = "no"
    errors = _errors(validate(objects, Target(35, "baseline")), "openapi")
    assert {("additionalProperties", f"{C0}.securityContext.bogus"),
            ("additionalProperties", f"{POD}.replicas"),
            ("type", f"{POD}.hostUsers")} <= errors


def test_openapi_follows_the_target_version() -> None:
    objects = _objects()
    # appArmorProfile appeared in the 1.30 API; hostUsers in 1.25.
    assert _errors(validate(objects, Target(29, "privileged")), "openapi") >= {
        ("additionalProperties", f"{POD}.securityContext.appArmorProfile")}
    assert _errors(validate(objects, Target(30, "privileged")), "openapi") == set()


def test_restricted_namespace_never_admits_the_executor() -> None:
    objects = _objects()
    objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    findings = validate(objects, Target(35, "restricted"))
    namespace = [f for f in findings if f.rule == "namespacePodSecurity"]
    assert namespace and namespace[0].severity is Severity.ERROR
    assert any(f.source == "podsecurity" and f.severity is Severity.ERROR for f in findings)


def test_baseline_pinned_below_1_35_is_explained() -> None:
    objects = _objects()
    objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] = "v1.34"
    findings = validate(objects, Target(35, "baseline"))
    namespace = next(f for f in findings if f.rule == "namespacePodSecurity")
    assert namespace.severity is Severity.ERROR
    assert "v1.35" in namespace.message and "enforce-version" in namespace.fix


@pytest.mark.parametrize(("label", "denied"), [("v1.34", True), ("v1.035", False), ("1.34", False), ("latest", False)])
def test_enforce_version_label_reads_as_the_api_server_reads_it(label: str, denied: bool) -> None:
    """Only `v1.N` pins a version; anything else (`v1.035`, `1.34`) means latest upstream."""
    objects = _objects()
    objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] = label
    findings = validate(objects, Target(35, "baseline"))
    errors = [f for f in findings if f.rule == "namespacePodSecurity" and f.severity is Severity.ERROR]
    assert bool(errors) is denied, [f.message for f in errors]


def test_kubernetes_1_34_renders_privileged_enforce_and_says_why() -> None:
    findings = validate(_objects(kubernetes={"version": "1.34"}), Target(34, "baseline"))
    assert not [f for f in findings if f.severity is Severity.ERROR]
    info = next(f for f in findings if f.rule == "namespacePodSecurity")
    assert "v1.35" in info.message
    warned = [f for f in findings if f.source == "podsecurity"]
    assert warned and all(f.severity is Severity.WARNING for f in warned)


def test_kubernetes_1_34_without_namespace_object_is_an_error_with_the_way_out() -> None:
    findings = validate(_objects(kubernetes={"version": "1.34"}, namespace={"create": False}), Target(34, "baseline"))
    denied = [f for f in findings if f.source == "podsecurity" and f.severity is Severity.ERROR]
    assert denied
    assert any("privileged" in f.fix or "privileged" in f.message for f in denied)


def test_operator_style_manifest_gets_actionable_findings() -> None:
    result = zuul_k8s("validate", "-f", str(MANIFESTS / "operator-style-statefulset.yaml"), "-o", "json")
    assert result.returncode == 1, result.stderr
    found = {(f["source"], f["rule"], f["path"]) for f in json.loads(result.stdout) if f["severity"] == "error"}
    assert {
        ("contract", "privileged", f"{C0}.securityContext.privileged"),
        ("podsecurity", "privileged", f"{C0}.securityContext.privileged"),
        ("contract", "hostUsers", f"{POD}.hostUsers"),
        ("contract", "procMount", f"{C0}.securityContext.procMount"),
        ("contract", "gracePeriodOnContainer", f"{C0}.terminationGracePeriodSeconds"),
        ("openapi", "additionalProperties", f"{C0}.terminationGracePeriodSeconds"),
        ("contract", "rootNeedsSetfcap", f"{C0}.securityContext.capabilities.add"),
    } <= found
    assert all(f["fix"] for f in json.loads(result.stdout))


def test_helm_style_manifest_with_unlabelled_namespace() -> None:
    result = zuul_k8s("validate", "-f", str(MANIFESTS / "helm-style-deployment.yaml"))
    assert result.returncode == 1
    assert ("securityContext.capabilities.add: adds 'SYS_ADMIN': bwrap needs no capability but SETFCAP, "
            "and that only as root [contract/capabilities]") in result.stdout
    assert "fix: remove 'SYS_ADMIN' from capabilities.add" in result.stdout
    assert "enforces privileged" in result.stdout
    assert "fix: " in result.stdout


def test_validate_reads_stdin_and_kustomize_style_lists() -> None:
    objects = _objects()
    listing = {"apiVersion": "v1", "kind": "List", "items": copy.deepcopy(objects)}
    result = zuul_k8s("validate", "-f", "-", "-o", "json", stdin=json.dumps(listing))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_validate_rejects_documents_that_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- 1\n")
    result = zuul_k8s("validate", "-f", str(path))
    assert result.returncode == 2
    assert f"{path}:document 2: is not a Kubernetes object" in result.stderr


def test_validate_cli_exit_codes() -> None:
    assert zuul_k8s("validate").returncode == 0
    result = zuul_k8s("validate", "-c", "-", stdin="isolation: {seccomp: Unconfined}\n")
    assert result.returncode == 1
    assert "seccompProfile" in result.stdout
    objects = _objects()
    objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    result = zuul_k8s("validate", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    assert result.returncode == 1
    assert "restricted denies procMount" in result.stdout


def _pdb(api_version: str) -> Obj:
    return {"apiVersion": api_version, "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
            "spec": {"maxUnavailable": 1}}


def test_removed_builtin_api_version_is_an_error_with_the_served_one() -> None:
    [finding] = validate([_pdb("policy/v1beta1")], Target(35, "baseline"))
    assert (finding.severity, finding.rule, finding.path) == (Severity.ERROR, "unserved", "apiVersion")
    assert finding.message == ("Kubernetes 1.35 does not serve policy/v1beta1 PodDisruptionBudget "
                               "(removed, not yet added, or misspelt)")
    assert finding.fix == "use policy/v1"
    deployment = {"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}}
    assert validate([deployment], Target(35, "baseline"))[0].fix == "use apps/v1"
    typo = {"apiVersion": "v1", "kind": "Deploymnet", "metadata": {"name": "d"}}
    assert validate([typo], Target(35, "baseline"))[0].severity is Severity.ERROR


def test_custom_resources_stay_a_warning_even_in_a_lookalike_group() -> None:
    for api_version in ("example.org/v1", "networking.example.org/v1"):
        # networking.example.org/v1 Ingress must not be checked against networking.k8s.io's Ingress
        crd = {"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "i"}, "spec": {"any": 1}}
        found = validate([crd], Target(35, "baseline"))
        assert [(f.severity, f.rule) for f in found] == [(Severity.WARNING, "unknown-kind")]


def test_validate_takes_several_files_after_one_or_several_f(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(json.dumps(_pdb("policy/v1")))
    second.write_text(json.dumps(_pdb("policy/v1beta1")))
    for args in (["-f", str(first), str(second)], ["-f", str(first), "-f", str(second)]):
        result = zuul_k8s("validate", *args, "-o", "json")
        assert result.returncode == 1, result.stderr
        assert [f["rule"] for f in json.loads(result.stdout)] == ["unserved"]


def test_selector_that_misses_the_pods_is_an_error() -> None:
    objects = _objects()
    workload = next(o for o in objects if o["kind"] == "Deployment")
    workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"
    found = [f for f in validate(objects, Target(35, "baseline")) if f.rule == "selectorMismatch"]
    assert [(f.severity, f.path) for f in found] == [(Severity.ERROR, "spec.selector.matchLabels")]
    assert "app.kubernetes.io/instance='zuul-executor'" in found[0].message

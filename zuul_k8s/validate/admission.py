"""What Pod Security Admission will do to these objects in their namespace.

The level that decides is the namespace's: its `enforce` label denies (an
error here), its `warn` label only warns (a warning here). The policy version
the API server applies is the label's, capped at the server's own version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from zuul_k8s import isolation
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.podsecurity.versions import label_minor
from zuul_k8s.workloads import as_dict, object_namespace, pod_template, string_map

PSA_LABEL = "pod-security.kubernetes.io"
LEVELS = ("privileged", "baseline", "restricted")  # loosest first


@dataclass(frozen=True)
class Target:
    """The cluster the objects are for: Kubernetes minor version and default PSA level."""

    minor: int
    level: str


@dataclass(frozen=True)
class Policy:
    level: str
    minor: int

    @property
    def version(self) -> str:
        return f"v1.{self.minor}"


def _policy(labels: dict[str, str], mode: str, target: Target, default_level: str) -> Policy:
    level = labels.get(f"{PSA_LABEL}/{mode}", default_level)
    if level not in LEVELS:
        level = "restricted"  # upstream enforces restricted for an unknown level
    version = labels.get(f"{PSA_LABEL}/{mode}-version", "latest")  # string_map: always a str
    return Policy(level, label_minor(version, target.minor))


def _executor_namespaces(objects: list[dict[str, Any]]) -> set[str | None]:
    found = set()
    for obj in objects:
        pod = pod_template(obj)
        if pod and any(isolation.is_executor_container(c) for _, c in pod.containers()):
            found.add(object_namespace(obj))
    return found


def namespace_findings(objects: list[dict[str, Any]], target: Target) -> list[Finding]:
    """The executor's Namespace labels against what admits it on the target version."""
    homes = _executor_namespaces(objects)
    out = []
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        meta = as_dict(obj.get("metadata"))
        name = str(meta.get("name"))
        if name not in homes and None not in homes:
            continue
        labels = string_map(meta.get("labels"))
        enforce = _policy(labels, "enforce", target, "privileged")
        path = f"metadata.labels.{PSA_LABEL}/enforce"
        verdict = _enforce_verdict(enforce, target)
        if verdict:
            severity, message, fix = verdict
            out.append(Finding(severity, "contract", "namespacePodSecurity", "Namespace", name, path, message, fix))
    return out


def _enforce_verdict(enforce: Policy, target: Target) -> tuple[Severity, str, str] | None:
    floor = isolation.BASELINE_ADMITS_UNMASKED_FROM
    if enforce.level == "restricted":
        return (Severity.ERROR,
                "restricted denies procMount: Unmasked at every policy version: the executor is never admitted",
                f"label the namespace {PSA_LABEL}/enforce=baseline (Kubernetes 1.{floor}+)")
    if enforce.level == "baseline" and enforce.minor < floor:
        if target.minor >= floor:
            fix = f"set {PSA_LABEL}/enforce-version to v1.{floor} or later (or latest)"
        else:
            fix = (f"on Kubernetes 1.{target.minor} enforce privileged and keep warn/audit at baseline "
                   f"until the cluster runs 1.{floor}+")
        return (Severity.ERROR,
                f"baseline policy {enforce.version} denies procMount: Unmasked; baseline admits it "
                f"(with hostUsers: false) only from v1.{floor}", fix)
    if enforce.level == "privileged" and target.minor >= floor:
        return (Severity.WARNING,
                "the namespace enforces privileged: any pod in it may be privileged",
                f"label it {PSA_LABEL}/enforce=baseline with enforce-version v1.{target.minor}: "
                "the executor is admitted at baseline")
    if enforce.level == "privileged":
        return (Severity.INFO,
                f"enforces privileged because baseline admits procMount: Unmasked only from policy v1.{floor}",
                f"after upgrading to Kubernetes 1.{floor}+, enforce baseline")
    return None


def _namespace_labels(objects: list[dict[str, Any]]) -> dict[str | None, dict[str, str]]:
    labels: dict[str | None, dict[str, str]] = {}
    for obj in objects:
        if obj.get("kind") == "Namespace":
            meta = as_dict(obj.get("metadata"))
            name = meta.get("name")
            labels[name if isinstance(name, str) else None] = string_map(meta.get("labels"))
    return labels


def pod_security_findings(objects: list[dict[str, Any]], target: Target,
                          namespaces: list[dict[str, Any]] | None = None) -> list[Finding]:
    """Pod Security Standards verdicts at each namespace's enforce (errors) and warn (warnings) level.

    `namespaces`: the objects to find Namespace labels in (default: `objects`).
    """
    from zuul_k8s import podsecurity

    namespaces_labels = _namespace_labels(objects if namespaces is None else namespaces)
    only = next(iter(namespaces_labels.values())) if len(namespaces_labels) == 1 else None
    out = []
    for obj in objects:
        if pod_template(obj) is None:
            continue
        ns = object_namespace(obj)
        labels = namespaces_labels.get(ns, only if ns is None else None)
        if labels is None:
            labels = {f"{PSA_LABEL}/enforce": target.level}
        enforce = _policy(labels, "enforce", target, "privileged")
        warn = _policy(labels, "warn", target, "privileged")
        errors = podsecurity.findings([obj], enforce.level, enforce.version)
        out += errors
        if LEVELS.index(warn.level) > LEVELS.index(enforce.level) or warn.minor != enforce.minor:
            seen = {(f.rule, f.path) for f in errors}
            out += [
                _as_warning(f) for f in podsecurity.findings([obj], warn.level, warn.version)
                if (f.rule, f.path) not in seen
            ]
    return out


def _as_warning(finding: Finding) -> Finding:
    return replace(finding, severity=Severity.WARNING,
                   message=f"(namespace warns, does not enforce) {finding.message}")

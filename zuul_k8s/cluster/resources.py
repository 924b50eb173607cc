"""Where each kind the kit touches lives in the REST API, as one table.

A table instead of discovery: the kit applies a fixed set of kinds, and a
table keeps the request path a pure function of the object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


RESOURCES: dict[str, Resource] = {
    "Namespace": Resource("", "v1", "namespaces", False),
    "Node": Resource("", "v1", "nodes", False),
    "ServiceAccount": Resource("", "v1", "serviceaccounts", True),
    "ConfigMap": Resource("", "v1", "configmaps", True),
    "Secret": Resource("", "v1", "secrets", True),
    "Service": Resource("", "v1", "services", True),
    "Pod": Resource("", "v1", "pods", True),
    "Event": Resource("", "v1", "events", True),
    "Deployment": Resource("apps", "v1", "deployments", True),
    "StatefulSet": Resource("apps", "v1", "statefulsets", True),
    "ReplicaSet": Resource("apps", "v1", "replicasets", True),
    "ControllerRevision": Resource("apps", "v1", "controllerrevisions", True),
    "Job": Resource("batch", "v1", "jobs", True),
    "PodDisruptionBudget": Resource("policy", "v1", "poddisruptionbudgets", True),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies", True),
    "SelfSubjectAccessReview": Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", False),
}

# Apply order: what others refer to goes first (design: Namespace, then
# ServiceAccount/ConfigMap/Service, then the workload, then its PDB).
APPLY_RANK: dict[str, int] = {
    "Namespace": 0,
    "ServiceAccount": 1, "ConfigMap": 1, "Secret": 1, "Service": 1,
    "NetworkPolicy": 1,  # before the workload: its pods are fenced from their first start
    "Deployment": 2, "StatefulSet": 2, "Job": 2,
    "PodDisruptionBudget": 3,
}


def resource_of(obj: dict[str, Any]) -> Resource:
    kind = obj.get("kind")
    if kind not in RESOURCES:
        raise KeyError(f"the kit does not manage {kind!r} objects")
    return RESOURCES[kind]


def object_path(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return resource_of(obj).path(meta.get("namespace"), meta.get("name"))


def ref(obj: dict[str, Any]) -> str:
    """`Deployment zuul/zuul-executor`: how messages name an object."""
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects in dependency order; stable within a rank."""
    return sorted(objects, key=lambda o: APPLY_RANK.get(o.get("kind", ""), 2))

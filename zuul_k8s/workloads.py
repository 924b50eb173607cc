"""Where the pod template sits in each workload kind.

Pod Security Admission, the isolation contract and the self-test all judge
pods; this table lets them find the pod inside any object that makes pods.
The getters here are type-safe: validation reads manifests of any shape (the
OpenAPI engine reports wrong shapes; the other engines must not crash on them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# kind -> path from the object to its pod template ({metadata, spec}).
# A Pod is its own template. Source: the Kubernetes API reference for each kind;
# Pod Security Admission evaluates the same set (pod-security-admission,
# admission/admission.go, PodSpecExtractor).
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "ReplicationController": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class PodTemplate:
    """One pod (template) inside an object, with the path to it for messages."""

    kind: str
    name: str
    path: tuple[str, ...]  # from the object to the template
    metadata: dict[str, Any]
    spec: dict[str, Any]

    def spec_path(self, *rest: str | int) -> tuple[str | int, ...]:
        return (*self.path, "spec", *rest)

    def containers(self) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
        """(path, container) for init, regular and ephemeral containers, in that order."""
        found = []
        for field in CONTAINER_LISTS:
            for index, container in enumerate(as_list(self.spec.get(field))):
                if isinstance(container, dict):
                    found.append((self.spec_path(field, index), container))
        return found


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    """The value if it is a string, else None."""
    return value if isinstance(value, str) else None


def string_map(value: Any) -> dict[str, str]:
    """The string entries of a mapping (labels, annotations); anything else is dropped."""
    return {k: v for k, v in as_dict(value).items() if isinstance(k, str) and isinstance(v, str)}


def object_name(obj: dict[str, Any]) -> str:
    return as_str(as_dict(obj.get("metadata")).get("name")) or "(unnamed)"


def object_namespace(obj: dict[str, Any]) -> str | None:
    return as_str(as_dict(obj.get("metadata")).get("namespace"))


def pod_template(obj: dict[str, Any]) -> PodTemplate | None:
    """The pod template of a workload object, or None for objects that make no pods."""
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in POD_TEMPLATE_PATHS:
        return None
    path = POD_TEMPLATE_PATHS[kind]
    node: Any = obj
    for key in path:
        node = as_dict(node).get(key)
    node = as_dict(node)
    return PodTemplate(
        kind=kind,
        name=object_name(obj),
        path=path,
        metadata=as_dict(node.get("metadata")),
        spec=as_dict(node.get("spec")),
    )

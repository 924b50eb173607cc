"""The parts of a pod the checks read, read once, the way the API server sees them.

Manifests are untrusted YAML, so nothing here assumes a shape: a field of the
wrong type counts as unset, the way the checks treat a missing one (the API
server would refuse such an object before admission anyway; the OpenAPI
validator reports it). `null` and a missing key are the same (spec 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zuul_k8s.workloads import CONTAINER_LISTS

FieldPath = tuple[str | int, ...]


class MapKey(str):
    """A key of a string map (an annotation name): paths show it as ["key"]."""

    __slots__ = ()


def mapping(value: Any) -> dict[str, Any] | None:
    """The value when it is an object, else None (unset)."""
    return value if isinstance(value, dict) else None


def entries(value: Any) -> list[Any]:
    """The value when it is a list, else an empty list (missing lists are empty)."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    """A string field, with unset read as "" (spec 3.1)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def is_zero(value: Any) -> bool:
    """An integer 0, and not the boolean false (spec 10: `0 == False` in Python)."""
    return value == 0 and isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ContainerView:
    name: str
    path: FieldPath  # from the pod: ("spec", "containers", 0)
    fields: dict[str, Any]
    security: dict[str, Any] | None  # securityContext, None when unset

    def at(self, *rest: str | int) -> FieldPath:
        return (*self.path, *rest)

    def security_field(self, name: str) -> Any:
        return None if self.security is None else self.security.get(name)


@dataclass(frozen=True, slots=True)
class PodView:
    annotations: dict[str, str]
    spec: dict[str, Any]
    security: dict[str, Any] | None  # spec.securityContext, None when unset
    containers: tuple[ContainerView, ...]  # init, regular, ephemeral (spec 3.2)
    volumes: tuple[dict[str, Any], ...]  # after API defaulting (spec 1.1); index = position
    windows: bool  # spec.os.name == "windows" (spec 3.3)
    user_namespace: bool  # spec.hostUsers is explicitly false (spec 3.4)

    def security_field(self, name: str) -> Any:
        return None if self.security is None else self.security.get(name)


def default_volume(volume: dict[str, Any]) -> dict[str, Any]:
    """A volume as the API server stores it: no source means `emptyDir: {}`.

    The one API default that changes a verdict (spec 1.1); returns a new dict
    so the caller's object is never changed.
    """
    if any(value is not None for key, value in volume.items() if key != "name"):
        return volume
    return {**volume, "emptyDir": {}}


def _annotations(metadata: dict[str, Any]) -> dict[str, str]:
    # A null annotation value decodes to "" in Kubernetes' map[string]string.
    raw = mapping(metadata.get("annotations")) or {}
    return {str(key): text(value) for key, value in raw.items()}


def pod_view(metadata: dict[str, Any] | None, spec: dict[str, Any] | None) -> PodView:
    metadata = mapping(metadata) or {}
    spec = mapping(spec) or {}
    containers = []
    for field in CONTAINER_LISTS:
        for index, container in enumerate(entries(spec.get(field))):
            if isinstance(container, dict):
                containers.append(
                    ContainerView(
                        name=text(container.get("name")),
                        path=("spec", field, index),
                        fields=container,
                        security=mapping(container.get("securityContext")),
                    )
                )
    volumes = tuple(
        default_volume(volume) if isinstance(volume, dict) else {}
        for volume in entries(spec.get("volumes"))
    )
    os = mapping(spec.get("os")) or {}
    return PodView(
        annotations=_annotations(metadata),
        spec=spec,
        security=mapping(spec.get("securityContext")),
        containers=tuple(containers),
        volumes=volumes,
        windows=os.get("name") == "windows",
        user_namespace=spec.get("hostUsers") is False,
    )

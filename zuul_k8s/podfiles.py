"""Which paths a container sees mounted, and from where: read from any pod spec.

The zuul.conf check needs this (every file zuul.conf names must be mounted, the
key where private_key_file points, state_dir on the state volume), and so does
anyone judging another deployer's manifest: it reads the pod spec generically,
not the kit's config, so the kit's own mounts, `mounts` entries and a
kustomize patch's additions are all seen the same way. Pure; any shape is
tolerated (wrong shapes are the OpenAPI engine's to report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zuul_k8s.workloads import as_dict, as_list, as_str

DEFAULT_MODE = 0o644  # Kubernetes' defaultMode for Secret, ConfigMap, projected and downwardAPI volumes
# Volume types whose files come from API objects; each names its object by this field.
OBJECT_SOURCES = {"secret": "secretName", "configMap": "name"}


@dataclass(frozen=True)
class Mount:
    """One mount of a container: a directory, or a single file (a key, or a subPath of one)."""

    path: str  # mountPath in the container
    source: str  # volume type: secret, configMap, emptyDir, persistentVolumeClaim, hostPath, ...
    name: str | None  # the Secret's, ConfigMap's or claim's name; None for emptyDir and the like
    key: str | None  # a single key mounted as the file `path` (subPath); None: a directory
    keys: tuple[str, ...]  # a directory's projected keys (items); () means every key of the object
    mode: int | None  # file mode of Secret/ConfigMap files; None for other sources
    read_only: bool
    volume: str  # the volume's name in the pod

    @property
    def is_file(self) -> bool:
        return self.key is not None

    def covers(self, path: str) -> bool:
        """Would a file at `path` be inside this mount (the file itself, or under the directory)?"""
        if self.is_file:
            return path == self.path
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


def _volume_source(volume: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for key, value in volume.items():
        if key != "name" and isinstance(value, dict):
            return key, value
    return "unknown", {}


def _mode(source: str, spec: dict[str, Any], key: str | None) -> int | None:
    if source not in OBJECT_SOURCES:
        return None
    for item in as_list(spec.get("items")):
        item = as_dict(item)
        if key is not None and item.get("path") == key and isinstance(item.get("mode"), int):
            return int(item["mode"])
    mode = spec.get("defaultMode")
    return int(mode) if isinstance(mode, int) and not isinstance(mode, bool) else DEFAULT_MODE


def _item_key(spec: dict[str, Any], sub_path: str) -> str:
    """The object key behind a subPath: items map keys to file paths."""
    for item in as_list(spec.get("items")):
        item = as_dict(item)
        if item.get("path") == sub_path and isinstance(item.get("key"), str):
            return str(item["key"])
    return sub_path


def container_mounts(pod_spec: dict[str, Any], container: dict[str, Any]) -> list[Mount]:
    """Every volumeMount of `container` in `pod_spec`, resolved to its volume, in the pod's order."""
    volumes = {as_str(as_dict(v).get("name")): as_dict(v) for v in as_list(pod_spec.get("volumes"))}
    out = []
    for raw in as_list(container.get("volumeMounts")):
        mount = as_dict(raw)
        path, volume_name = as_str(mount.get("mountPath")), as_str(mount.get("name"))
        if path is None or volume_name is None:
            continue
        source, spec = _volume_source(volumes.get(volume_name, {}))
        sub_path = as_str(mount.get("subPath"))
        name_field = OBJECT_SOURCES.get(source, "claimName" if source == "persistentVolumeClaim" else "")
        name = as_str(spec.get(name_field)) if name_field else None
        # A subPath of a Secret or ConfigMap is one key's file; of other volumes, a subdirectory.
        key = _item_key(spec, sub_path) if sub_path and source in OBJECT_SOURCES else None
        keys = tuple(str(as_dict(i).get("key")) for i in as_list(spec.get("items")))
        read_only = mount.get("readOnly") is True or source in OBJECT_SOURCES  # the kubelet mounts those read-only
        out.append(Mount(path, source, name, key, keys if key is None else (), _mode(source, spec, sub_path),
                         read_only, volume_name))
    return out


def listing(mounts: list[Mount]) -> list[tuple[str, str, int | None]]:
    """(path, source, mode) of each mount, `source` as `secret/NAME[KEY]`, `emptyDir` and the like."""
    out = []
    for m in mounts:
        where = m.source if m.name is None else f"{m.source}/{m.name}"
        if m.key is not None:
            where += f"[{m.key}]"
        out.append((m.path, where, m.mode))
    return out


def covering(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a file at `path` would come from: the deepest one covering it, or None."""
    found = [m for m in mounts if m.covers(path)]
    return max(found, key=lambda m: len(m.path)) if found else None

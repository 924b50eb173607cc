"""What the executor's process finds at a path of its container, read from the pod spec.

zuul.conf names files and directories; whether Zuul can use them depends on the
pod: which mount covers the path (zuul_k8s.podfiles), whether that volume puts
a file there (a Secret's `items`, a `subPath`), the mode and owner the kubelet
gives it, and the uid, groups and HOME the process runs with. Pure: pod spec
in, facts out; messages are the zuul.conf check's business.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from zuul_k8s import podfiles
from zuul_k8s.workloads import as_dict, as_list, as_str
from zuul_k8s.zuulconf import UNKNOWN

# Users of the upstream zuul-executor image: name -> (uid, gid, home). Source: Zuul 14.x
# Dockerfile (`useradd -u 10001 -d /var/lib/zuul zuul`), root's home in Debian; see facts.md.
IMAGE_USERS = {"root": (0, 0, "/root"), "zuul": (10001, 10001, "/var/lib/zuul")}
# Volume types whose files the kubelet writes read-only, owned by root: Kubernetes
# pkg/volume/{secret,configmap,projected,downwardapi} (GetAttributes ReadOnly: true).
PROJECTED_SOURCES = ("secret", "configMap", "projected", "downwardAPI")
READ_ONLY_SOURCES = (*PROJECTED_SOURCES, "image")
# Volumes that start empty in every new pod.
EMPTY_SOURCES = ("emptyDir", "ephemeral")
# With fsGroup, the kubelet chowns a read-only volume's files to the group and adds
# these bits (pkg/volume/volume_linux.go, changeFilePermission: roMask 0440).
FS_GROUP_READ_ONLY_BITS = 0o440


@dataclass(frozen=True)
class Identity:
    """Who the executor process is: None where the pod spec does not say (the image decides)."""

    uid: int | None
    groups: frozenset[int]  # primary and supplementary groups
    home: str | None


@dataclass(frozen=True)
class Place:
    """What backs one path of the container."""

    path: str
    mount: podfiles.Mount | None  # None: the image's own filesystem
    exists: bool | None  # True: the pod spec puts a file there; False: it cannot be there; None: cannot tell
    where: str  # "key id_rsa of secret zuul-ssh-key", "the emptyDir volume state", "the image"
    writable: bool
    mode: int | None = None  # of a file the kubelet writes
    owner: int | None = None
    group: int | None = None

    def readable_by(self, who: Identity) -> bool | None:
        """Permission bits as the kernel checks them (the kit drops CAP_DAC_OVERRIDE)."""
        if self.mode is None or self.owner is None or who.uid is None:
            return None
        if who.uid == self.owner:
            bits = self.mode >> 6
        elif self.group is not None and self.group in who.groups:
            bits = self.mode >> 3
        else:
            bits = self.mode
        return bool(bits & 0o4)

    def open_to_others(self, who: Identity) -> bool:
        """OpenSSH refuses a private key its owner may not keep to itself (sshkey_perm_ok)."""
        return self.mode is not None and who.uid is not None and who.uid == self.owner and bool(self.mode & 0o077)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class PodView:
    """The executor container of one pod template, as its process sees the filesystem."""

    def __init__(self, pod_spec: dict[str, Any], container: dict[str, Any],
                 claim_templates: tuple[str, ...] = ()) -> None:
        self.spec = pod_spec
        self.container = container
        self.mounts = podfiles.container_mounts(pod_spec, container)
        self.volumes = {as_str(as_dict(v).get("name")): as_dict(v) for v in as_list(pod_spec.get("volumes"))}
        self.claim_templates = claim_templates
        context = as_dict(pod_spec.get("securityContext"))
        self.fs_group = _int(context.get("fsGroup"))
        self.read_only_root = as_dict(container.get("securityContext")).get("readOnlyRootFilesystem") is True

    def env(self) -> dict[str, str]:
        """The container's environment: literal values, UNKNOWN for those set at run time."""
        out: dict[str, str] = {}
        for var in as_list(self.container.get("env")):
            var = as_dict(var)
            name, value = as_str(var.get("name")), as_str(var.get("value"))
            if name is not None:
                out[name] = value if value is not None and "$(" not in value else UNKNOWN
        return out

    def may_have_more_env(self) -> bool:
        """envFrom brings variables whose names the spec does not list."""
        return bool(as_list(self.container.get("envFrom")))

    def identity(self, drop_to: str | None = None) -> Identity:
        """uid, groups and HOME: the spec's runAsUser/runAsGroup, else the image's user (root).

        `drop_to`: zuul.conf's [executor] user, which a root executor switches to (Zuul's
        dropPrivs: setuid, setgroups([]), HOME of that user)."""
        pod, own = as_dict(self.spec.get("securityContext")), as_dict(self.container.get("securityContext"))
        uid = _int(own.get("runAsUser"))
        uid = uid if uid is not None else _int(pod.get("runAsUser"))
        uid = uid if uid is not None else 0  # the upstream image has no USER line (facts.md)
        by_uid = {entry[0]: entry for entry in IMAGE_USERS.values()}
        if drop_to is not None and uid == 0:
            if drop_to not in IMAGE_USERS:
                return Identity(None, frozenset(), None)
            uid, gid, home = IMAGE_USERS[drop_to]
            return Identity(uid, frozenset({gid}), home)
        gid = _int(own.get("runAsGroup"))
        gid = gid if gid is not None else _int(pod.get("runAsGroup"))
        if gid is None and uid in by_uid:
            gid = by_uid[uid][1]
        groups = {g for g in (gid, self.fs_group) if g is not None}
        groups |= {g for g in as_list(pod.get("supplementalGroups")) if _int(g) is not None}
        home = self.env().get("HOME")
        if home is None or UNKNOWN in home:
            home = by_uid[uid][2] if uid in by_uid else None
        return Identity(uid, frozenset(groups), home)

    def place(self, path: str) -> Place:
        path = posixpath.normpath(path)
        mount = podfiles.covering(self.mounts, path)
        if mount is None:
            where = ("the container's read-only root filesystem" if self.read_only_root
                     else "the container's own root filesystem")
            return Place(path, None, None, where, not self.read_only_root)
        source = mount.source
        if source == "unknown" and mount.volume in self.claim_templates:
            source = "persistentVolumeClaim"
        writable = not mount.read_only and source not in READ_ONLY_SOURCES
        volume = self.volumes.get(mount.volume, {})
        if source in PROJECTED_SOURCES:
            return self._projected(path, mount, source, as_dict(volume.get(source)))
        described = f"the {source} volume {mount.volume}"
        if source in EMPTY_SOURCES and path != mount.path:
            filled = self._filled_by_init(mount.volume)
            return Place(path, mount, None if filled else False, described, writable)
        return Place(path, mount, True if path == mount.path else None, described, writable)

    def _filled_by_init(self, volume: str) -> bool:
        """An init container that mounts the volume writable may put files there."""
        for init in as_list(self.spec.get("initContainers")):
            for m in as_list(as_dict(init).get("volumeMounts")):
                if as_dict(m).get("name") == volume and as_dict(m).get("readOnly") is not True:
                    return True
        return False

    def _projected(self, path: str, mount: podfiles.Mount, source: str, spec: dict[str, Any]) -> Place:
        """A Secret/ConfigMap/projected/downwardAPI file: is it there, with which mode?"""
        name = f" {mount.name}" if mount.name else ""
        files, every_key = _files(source, spec)
        base = _int(spec.get("defaultMode"))
        base = base if base is not None else podfiles.DEFAULT_MODE
        sub_path = as_str(next((m.get("subPath") for m in as_list(self.container.get("volumeMounts"))
                                if as_dict(m).get("mountPath") == mount.path), None))
        if sub_path:
            if path != mount.path:
                return Place(path, mount, False, f"a single file of {source}{name} (subPath)", False)
            rel = sub_path
        elif path == mount.path:
            return Place(path, mount, False, f"the directory where {source}{name} is mounted", False)
        else:
            rel = path[len(mount.path.rstrip("/")) + 1:]
        if rel in files:
            exists: bool | None = True
            mode = files[rel] if files[rel] is not None else base
            where = f"{rel} of {source}{name}"
        else:
            exists = None if every_key and "/" not in rel else False
            mode = base
            where = (f"key {rel} of {source}{name}" if exists is None
                     else f"{source}{name}, which puts no file {rel} there")
        owner, group = 0, 0
        if self.fs_group is not None:
            mode, group = mode | FS_GROUP_READ_ONLY_BITS, self.fs_group
        return Place(path, mount, exists, where, False, mode, owner, group)


def _files(source: str, spec: dict[str, Any]) -> tuple[dict[str, int | None], bool]:
    """(file path -> own mode, whether keys the spec does not list appear too)."""
    files: dict[str, int | None] = {}
    every_key = False
    parts = [as_dict(s) for s in as_list(spec.get("sources"))] if source == "projected" else [{source: spec}]
    for part in parts:
        for kind, inner in part.items():
            inner = as_dict(inner)
            items = as_list(inner.get("items"))
            if kind == "serviceAccountToken":
                path = as_str(inner.get("path"))
                if path:
                    files[path] = _int(inner.get("mode"))
            elif not items and kind in ("secret", "configMap"):
                every_key = True
            for item in items:
                path = as_str(as_dict(item).get("path"))
                if path:
                    files[posixpath.normpath(path)] = _int(as_dict(item).get("mode"))
    return files, every_key

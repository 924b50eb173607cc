"""What the kubelet would make of the rendered executor pod, as data for podman.

Pure: the rendered objects in, a plan out (entrypoint and arguments, env,
where each volume's files go with their owners and modes, probe URLs). Read
from the render, never assumed: the kit may move mounts, add volumes or
change the command, and the harness follows. The kubelet's rules are cited
where they are applied. What the harness cannot reproduce is an error that
names the field, not a silent difference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zuul_k8s.selftest.local import Executor, find_executor
from zuul_k8s.workloads import as_dict, as_list, pod_template

# Kubernetes: a Secret volume's files are 0644 unless defaultMode or an item's mode says otherwise.
DEFAULT_SECRET_MODE = 0o644


class Unsupported(ValueError):
    """The rendered pod uses something the harness cannot stand in for."""


@dataclass(frozen=True)
class File:
    """One file of a Secret volume: its path in the volume, content and mode."""

    path: str
    content: bytes = field(repr=False)  # a Secret's value: never in a repr or traceback
    mode: int = DEFAULT_SECRET_MODE
    secret: str = ""  # the Secret and key it comes from
    key: str = ""


@dataclass(frozen=True)
class Volume:
    """A pod volume, by kind: 'secret' (with its files) or 'dir' (emptyDir, PVC)."""

    name: str
    kind: str
    files: tuple[File, ...] = ()


@dataclass(frozen=True)
class Mount:
    volume: Volume
    path: str
    read_only: bool
    sub_path: str | None


@dataclass(frozen=True)
class Probe:
    kind: str  # readinessProbe, livenessProbe, startupProbe
    path: str
    port: int
    period: int
    timeout: int
    failure_threshold: int
    initial_delay: int


@dataclass(frozen=True)
class Plan:
    executor: Executor
    entrypoint: list[str] | None  # None: the image's ENTRYPOINT stays
    args: list[str] | None  # None: the image's CMD stays (only when entrypoint is None too)
    env: list[tuple[str, str]]
    mounts: list[Mount]
    ports: dict[str, int]  # container port name -> number
    probes: list[Probe]
    fs_group: int | None
    grace_seconds: int

    @property
    def container(self) -> dict[str, Any]:
        return self.executor.container


def _expand(text: str, env: Mapping[str, str]) -> str:
    """$(VAR) from earlier env entries; $$(VAR) stays literal (Kubernetes' expansion rules)."""
    def one(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        name = match.group(1)
        return env.get(name, match.group(0))
    return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def environment(container: dict[str, Any], fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """The container's env as the kubelet sets it: values, downward-API fields, $(VAR) expanded."""
    out: dict[str, str] = {}
    for entry in as_list(container.get("env")):
        name = entry.get("name")
        if "value" in entry:
            out[name] = _expand(str(entry["value"]), out)
            continue
        ref = as_dict(as_dict(entry.get("valueFrom")).get("fieldRef")).get("fieldPath")
        if ref not in fields:
            raise Unsupported(f"env {name}: valueFrom {entry.get('valueFrom')!r} has no stand-in here")
        out[name] = fields[ref]
    return list(out.items())


def command(container: dict[str, Any], env: Mapping[str, str]) -> tuple[list[str] | None, list[str] | None]:
    """(entrypoint, args): `command` replaces the image's ENTRYPOINT and drops its CMD;
    `args` alone replaces CMD (Kubernetes: "Define a command and arguments for a container")."""
    cmd = [_expand(str(c), env) for c in as_list(container.get("command"))] or None
    args = [_expand(str(a), env) for a in as_list(container.get("args"))]
    if cmd is not None:
        return cmd, args
    return None, args or None


def _secret_files(name: str, source: dict[str, Any], secrets: Mapping[str, Mapping[str, bytes]]) -> tuple[File, ...]:
    secret_name = source.get("secretName")
    data = secrets.get(secret_name)
    if data is None:
        if source.get("optional"):
            return ()
        raise Unsupported(f"volume {name}: Secret {secret_name!r} was not given to the harness")
    default = source.get("defaultMode", DEFAULT_SECRET_MODE)
    items = as_list(source.get("items"))
    if not items:
        return tuple(File(key, value, default, secret_name, key) for key, value in sorted(data.items()))
    files = []
    for item in items:
        key = item.get("key")
        if key not in data:
            raise Unsupported(f"volume {name}: Secret {secret_name!r} has no key {key!r}")
        files.append(File(item.get("path", key), data[key], item.get("mode", default), secret_name, key))
    return tuple(files)


def volumes(workload: dict[str, Any], secrets: Mapping[str, Mapping[str, bytes]]) -> dict[str, Volume]:
    template = pod_template(workload)
    assert template is not None
    out: dict[str, Volume] = {}
    for volume in as_list(template.spec.get("volumes")):
        name = volume.get("name")
        if "secret" in volume:
            out[name] = Volume(name, "secret", _secret_files(name, as_dict(volume["secret"]), secrets))
        elif "emptyDir" in volume:
            out[name] = Volume(name, "dir")
        else:
            raise Unsupported(f"volume {name}: only secret and emptyDir volumes have a stand-in here")
    for claim in as_list(as_dict(workload.get("spec")).get("volumeClaimTemplates")):
        name = as_dict(claim.get("metadata")).get("name")
        out[name] = Volume(name, "dir")  # a PVC: a directory of its own, like a fresh claim
    return out


def port_number(container: dict[str, Any], port: Any) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for each in as_list(container.get("ports")):
        if each.get("name") == port:
            return int(each["containerPort"])
    raise Unsupported(f"probe port {port!r} names no port of the container")


def probes(container: dict[str, Any]) -> list[Probe]:
    out = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = as_dict(container.get(kind))
        if not probe:
            continue
        http = as_dict(probe.get("httpGet"))
        if not http:
            raise Unsupported(f"{kind}: only httpGet probes have a stand-in here")
        # Kubernetes defaults: periodSeconds 10, timeoutSeconds 1, failureThreshold 3.
        out.append(Probe(kind, http.get("path", "/"), port_number(container, http.get("port")),
                         probe.get("periodSeconds", 10), probe.get("timeoutSeconds", 1),
                         probe.get("failureThreshold", 3), probe.get("initialDelaySeconds", 0)))
    return out


def plan(objects: list[Any], secrets: Mapping[str, Mapping[str, bytes]],
         fields: Mapping[str, str]) -> Plan:
    """How the kubelet would run the executor container of the rendered `objects`."""
    executor = find_executor(objects, "the render")
    workload = objects[executor.document]
    container = executor.container
    env = environment(container, fields)
    entrypoint, args = command(container, dict(env))
    by_name = volumes(workload, secrets)
    mounts = []
    for mount in as_list(container.get("volumeMounts")):
        volume = by_name.get(mount.get("name"))
        if volume is None:
            raise Unsupported(f"volumeMount {mount.get('name')!r} names no volume of the pod")
        mounts.append(Mount(volume, mount["mountPath"], bool(mount.get("readOnly")), mount.get("subPath")))
    spec = executor.template.spec
    ports = {p["name"]: int(p["containerPort"]) for p in as_list(container.get("ports")) if p.get("name")}
    return Plan(executor, entrypoint, args, env, mounts, ports, probes(container),
                as_dict(spec.get("securityContext")).get("fsGroup"),
                int(spec.get("terminationGracePeriodSeconds", 30)))


def secret_path(plan: Plan, secret: str, key: str) -> str | None:
    """Where the container sees `key` of Secret `secret`, or None when no mount shows it."""
    for mount in plan.mounts:
        for file in mount.volume.files:
            if (file.secret, file.key) != (secret, key):
                continue
            if mount.sub_path is None:
                return f"{mount.path.rstrip('/')}/{file.path}"
            if mount.sub_path == file.path:
                return mount.path
    return None


def volume_path(plan: Plan, volume: str) -> str | None:
    """Where the container mounts the whole volume `volume` (no subPath)."""
    for mount in plan.mounts:
        if mount.volume.name == volume and mount.sub_path is None:
            return mount.path
    return None

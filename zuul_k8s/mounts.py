"""What a site adds to the executor pod beyond the kit's own Secrets: config -> pod parts.

Real installations mount connection keys, a logging config, site variables and
CA bundles, pass settings through the environment, pull from private
registries and name hosts DNS does not know (the Zuul operator and sf-operator
offer the same). Mounts are read-only and come from Secrets and ConfigMaps
only: the config has no way to name a hostPath or any other volume type, so
these keys cannot loosen the pod (the isolation contract checks the result).
"""

from __future__ import annotations

import ipaddress
from typing import Any

Obj = dict[str, Any]

VOLUME_PREFIX = "extra-"
SECRET_MODE = 0o440  # readable by the executor through fsGroup, by no one else
CONFIGMAP_MODE = 0o444
# Kernel and runtime file systems: a mount there hides what the runtime put there
# (and /proc is the unmasked procfs bwrap relies on).
RUNTIME_DIRS = ("/proc", "/sys", "/dev")
SOURCES = ("secret", "configMap")


def mode_of(value: int | str | None, source: str) -> int:
    """The file mode: an int, an octal string ("0400"), or the source's default."""
    if value is None:
        return SECRET_MODE if source == "secret" else CONFIGMAP_MODE
    return int(value, 8) if isinstance(value, str) else value


def _source(entry: Obj) -> tuple[str, str]:
    """(secret|configMap, name) of a mounts or envFrom entry (the config checked there is one)."""
    kind = next(k for k in SOURCES if k in entry)
    return kind, str(entry[kind])


def volume_name(index: int) -> str:
    return f"{VOLUME_PREFIX}{index}"


def volumes(config: Any) -> list[Obj]:
    """One volume per `mounts` entry; a single-key mount projects only that key."""
    out = []
    for index, entry in enumerate(config["mounts"]):
        kind, name = _source(entry)
        source: Obj = {"secretName": name} if kind == "secret" else {"name": name}
        source["defaultMode"] = mode_of(entry.get("mode"), kind)
        if "key" in entry:
            source["items"] = [{"key": entry["key"], "path": entry["key"]}]
        if entry.get("optional"):
            source["optional"] = True
        out.append({"name": volume_name(index), kind: source})
    return out


def volume_mounts(config: Any) -> list[Obj]:
    out = []
    for index, entry in enumerate(config["mounts"]):
        mount: Obj = {"name": volume_name(index), "mountPath": entry["path"], "readOnly": True}
        if "key" in entry:
            mount["subPath"] = entry["key"]
        out.append(mount)
    return out


def env(config: Any) -> list[Obj]:
    out = []
    for entry in config["env"]:
        var: Obj = {"name": entry["name"]}
        if "value" in entry:
            var["value"] = entry["value"]
        for ref in ("secretKeyRef", "configMapKeyRef"):
            if ref in entry:
                selector: Obj = {"name": entry[ref]["name"], "key": entry[ref]["key"]}
                if entry[ref].get("optional"):
                    selector["optional"] = True
                var["valueFrom"] = {ref: selector}
        out.append(var)
    return out


def env_from(config: Any) -> list[Obj]:
    out = []
    for entry in config["envFrom"]:
        kind, name = _source(entry)
        ref: Obj = {"name": name}
        if entry.get("optional"):
            ref["optional"] = True
        source: Obj = {"prefix": entry["prefix"]} if "prefix" in entry else {}
        source["secretRef" if kind == "secret" else "configMapRef"] = ref
        out.append(source)
    return out


def image_pull_secrets(config: Any) -> list[Obj]:
    return [{"name": name} for name in config["imagePullSecrets"]]


def host_aliases(config: Any) -> list[Obj]:
    return [{"ip": entry["ip"], "hostnames": list(entry["hostnames"])} for entry in config["hostAliases"]]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


# List keys whose entries take exactly one of these fields (JSON Schema's oneOf would
# say so only as "is valid under each of ...").
ONE_OF: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mounts", SOURCES),
    ("envFrom", SOURCES),
    ("env", ("value", "secretKeyRef", "configMapKeyRef")),
)


def _entries(data: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, entry) of a list key's mapping entries; other shapes are the schema's to report."""
    value = data.get(key)
    return [(i, e) for i, e in enumerate(value) if isinstance(e, dict)] if isinstance(value, list) else []


def _fields(names: tuple[str, ...]) -> str:
    quoted = [f"`{n}`" for n in names]
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def entry_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(config path, message) for what the schema cannot say about single entries."""
    out = []
    for key, names in ONE_OF:
        for index, entry in _entries(data, key):
            if sum(entry.get(n) is not None for n in names) != 1:
                out.append((f"{key}[{index}]", f"give exactly one of {_fields(names)}"))
    for index, entry in _entries(data, "mounts"):
        path = entry.get("path")
        if isinstance(path, str) and any(_under(path, d) for d in RUNTIME_DIRS):
            out.append((f"mounts[{index}].path", f"{path} is under {', '.join(RUNTIME_DIRS)}, which belong to "
                        "the container runtime (bwrap needs the unmasked /proc); mount it elsewhere"))
    for index, entry in _entries(data, "hostAliases"):
        ip = entry.get("ip")
        if isinstance(ip, str):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                out.append((f"hostAliases[{index}].ip", f"{ip!r} is not an IPv4 or IPv6 address"))
    return out


def clashes(kit_container: Obj, config: Any) -> list[tuple[str, str]]:
    """(config path, message) for each `mounts` path or `env` name already taken.

    `kit_container` is the executor container rendered without the site's
    additions, so whatever the kit mounts or sets (which follows other keys,
    such as `secrets`) is read from it, not from a second list here. The API
    server refuses two mounts at one path; of two variables, the last wins.
    """
    owners = {str(m["mountPath"]): f"by the kit, volume {m['name']}" for m in kit_container["volumeMounts"]}
    out = []
    for index, entry in enumerate(config["mounts"]):
        path = entry["path"]
        if path in owners:
            out.append((f"mounts[{index}].path", f"{path} is already mounted ({owners[path]}); choose another path"))
        owners.setdefault(path, f"by mounts[{index}]")
    names = {str(var["name"]): "is set by the kit" for var in kit_container.get("env", [])}
    for index, entry in enumerate(config["env"]):
        name = entry["name"]
        if name in names:
            out.append((f"env[{index}].name", f"{name} {names[name]}; remove one"))
        names.setdefault(name, f"is given by env[{index}] already")
    return out

"""zuul.conf files built from a rendered pod's own values, and the check run on them.

The pod changes (where the SSH key is mounted, which port the probes call): the
tests read those values from the rendered objects instead of repeating them, so
a zuul.conf that "fits" is one an operator would write for that very pod.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.core.helpers import config
from zuul_k8s.findings import Finding
from zuul_k8s.render import render
from zuul_k8s.validate.zuulconf import findings
from zuul_k8s.zuulconf import load

Obj = dict[str, Any]


def objects(**sections: Any) -> list[Obj]:
    return render(config(**sections))


def workload(objs: list[Obj]) -> Obj:
    return next(o for o in objs if o["kind"] in ("Deployment", "StatefulSet"))


def pod_spec(objs: list[Obj]) -> Obj:
    return workload(objs)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(objs: list[Obj]) -> Obj:
    return pod_spec(objs)["containers"][0]  # type: ignore[no-any-return]


def port(objs: list[Obj], name: str) -> int:
    return next(p["containerPort"] for p in container(objs)["ports"] if p["name"] == name)  # type: ignore[no-any-return]


def probe_port(objs: list[Obj]) -> int:
    ref = container(objs)["livenessProbe"]["httpGet"]["port"]
    return port(objs, ref) if isinstance(ref, str) else int(ref)


def secret_file(objs: list[Obj], secret: str, key: str) -> str:
    """Where the pod puts `key` of Secret `secret`: the mount of its volume, items applied."""
    spec = pod_spec(objs)
    volume = next(v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret)
    mount = next(m for m in container(objs)["volumeMounts"] if m["name"] == volume["name"])
    if "subPath" in mount:
        return str(mount["mountPath"])
    items = {i["key"]: i["path"] for i in volume["secret"].get("items", [])}
    return f"{mount['mountPath']}/{items.get(key, key)}"


def mount_path(objs: list[Obj], volume: str) -> str:
    return next(str(m["mountPath"]) for m in container(objs)["volumeMounts"] if m["name"] == volume)


def fitting(objs: list[Obj], *, executor: str = "", extra: str = "", password: str = "a-keystore-password") -> str:
    """A complete executor zuul.conf written for this pod, the way the docs say."""
    return (
        "[zookeeper]\nhosts=zk.example.org:2281\n"
        f"tls_ca={secret_file(objs, 'zookeeper-client-tls', 'ca.crt')}\n"
        f"tls_cert={secret_file(objs, 'zookeeper-client-tls', 'tls.crt')}\n"
        f"tls_key={secret_file(objs, 'zookeeper-client-tls', 'tls.key')}\n\n"
        f"[keystore]\npassword={password}\n\n"
        "[executor]\nhostname=%(ZUUL_EXECUTOR_HOSTNAME)s\n"
        f"prometheus_port={probe_port(objs)}\nfinger_port={port(objs, 'finger')}\n"
        f"private_key_file={secret_file(objs, 'zuul-ssh-key', 'id_rsa')}\n"
        f"state_dir={mount_path(objs, 'state')}\n"
        f"{executor}\n{extra}"
    )


def without(text: str, key: str) -> str:
    """The zuul.conf with every `key=` line dropped."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}=")) + "\n"


def check(text: str, objs: list[Obj], file: str = "zuul.conf") -> list[Finding]:
    return findings(load(text.encode(), file), objs)


def rules(found: list[Finding]) -> set[tuple[str, str, str]]:
    """(severity, rule, SECTION.KEY) of each finding."""
    return {(f.severity.value, f.rule, f.path) for f in found}


def patched(objs: list[Obj], change: Any) -> list[Obj]:
    """A deep copy of the objects with `change(pod_spec, container)` applied."""
    out = copy.deepcopy(objs)
    change(pod_spec(out), container(out))
    return out

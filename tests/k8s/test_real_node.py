"""The real node (tests/k8s/node.py) does what the kit's isolation rests on:
a pod with `hostUsers: false` gets its own user namespace from kubelet 1.35,
containerd 2.2 and runc 1.4, and with `procMount: Unmasked` bwrap can mount a
fresh /proc inside it; with `procMount: Default` the masked /proc makes bwrap
fail. The settings are the kit's: its Localhost seccomp profile, all
capabilities dropped, uid 10001.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.fixtures import Cluster as K8s
from tests.k8s.fixtures import real_node as real_node_of
from zuul_k8s.cluster.client import Cluster

NAMESPACE = "real-node-userns"
NODE = "userns-node"  # its own name: the session cluster may have a `real-node` of its own
PROFILE = "profiles/zuul-executor.json"
KIT_PROFILE = Path(__file__).resolve().parents[2] / "zuul_k8s/profiles/seccomp/x86_64" / PROFILE
# bwrap as Zuul runs it, reduced to what decides the outcome: every namespace, a new /proc.
BWRAP = ("bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /usr/bin/id")
SCRIPT = ("cat /proc/self/uid_map; grep -E '^(Seccomp|CapEff):' /proc/self/status; "
          f"{BWRAP} 2>&1; echo bwrap-exit=$?")


@pytest.fixture(scope="module")
def real_node(k8s: K8s) -> Iterator[Any]:
    """The node on the session's control plane, with the kit's seccomp profile installed."""
    with real_node_of(k8s, NODE) as started:
        profile = started.seccomp_root / PROFILE
        profile.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KIT_PROFILE, profile)
        yield started


def _pod(name: str, image: str, proc_mount: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "hostUsers": False,
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": PROFILE}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", SCRIPT],
                "securityContext": {
                    "procMount": proc_mount, "runAsUser": 10001, "runAsGroup": 10001,
                    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }


def _run(api: Cluster, pod: dict[str, Any], timeout: float = 120) -> str:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    api.request("POST", path, body=pod)
    name = pod["metadata"]["name"]
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = (api.get(f"{path}/{name}") or {}).get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return api.text(f"{path}/{name}/log", container="probe")
        time.sleep(1)
    events = api.get(f"/api/v1/namespaces/{NAMESPACE}/events") or {}
    messages = [e.get("message") for e in events.get("items", [])]
    raise AssertionError(f"pod {name} did not finish: {status}\nevents: {messages}")


@pytest.fixture(scope="module")
def api(k8s: K8s, real_node: Any) -> Iterator[Cluster]:
    cluster = Cluster.connect(k8s.kubeconfig)
    cluster.request("POST", "/api/v1/namespaces",
                    body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    try:
        yield cluster
    finally:
        cluster.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")


def _base_image() -> str:
    from tests.runtime.images import BASE

    return BASE.tag


def test_node_reports_user_namespace_support(api: Cluster) -> None:
    node = api.get(f"/api/v1/nodes/{NODE}") or {}
    handlers = node["status"].get("runtimeHandlers") or []
    assert any((h.get("features") or {}).get("userNamespaces") for h in handlers), handlers
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://2.2."), info
    assert info["kubeletVersion"].startswith("v1.35."), info


def test_unmasked_proc_in_a_user_namespace_lets_bwrap_mount_proc(api: Cluster) -> None:
    log = _run(api, _pod("unmasked", _base_image(), "Unmasked"))
    uid_line = log.splitlines()[0].split()
    inside, outside, length = (int(x) for x in uid_line)
    assert (inside, length) == (0, 65536) and outside >= 65536, log  # not the identity map
    assert outside % 65536 == 0, log  # the kubelet's allocation unit
    assert "Seccomp:\t2" in log and "CapEff:\t0000000000000000" in log, log  # the kit's filter, no caps
    assert "uid=10001" in log and "bwrap-exit=0" in log, log


def test_masked_proc_makes_bwrap_fail(api: Cluster) -> None:
    log = _run(api, _pod("masked", _base_image(), "Default"))
    assert not log.startswith("0 0 4294967295"), log  # still its own user namespace
    assert "Can't mount proc" in log and "bwrap-exit=1" in log, log

"""Fake nodes at scale: KWOK (sigs.k8s.io/kwok) against the real control plane.

Nodes are real Node objects whose status the test writes (the runtime, kernel
and runtime handlers a preflight reads); KWOK keeps them Ready, makes their
pods Running and Ready, Job pods Succeeded, deletes terminating pods at once
(an instant drain), and serves pod logs from files named by ClusterLogs
objects, through the API server's usual kubelet connection.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.k8s import build
from tests.k8s.controlplane import ControlPlane, free_port
from tests.k8s.processes import Process, wait_for

MANAGED = ("kwok.x-k8s.io/node", "fake")

# KWOK's own stage definitions (read from its module, not copied): nodes go Ready and
# renew their leases; pods go Ready, Job pods Succeed, a deleted pod goes at once.
STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
# Two per-pod knobs on top of those stages, for the rollout tests: a pod annotated
# NOT_READY is never made Ready (a kubelet whose container never passes its probe), and
# a terminating pod annotated DELETE_DELAY ("30s") lingers that long (an executor still
# draining). DELETE_DELAY is the annotation KWOK's own general pod-delete stage reads.
NOT_READY = "zuul-k8s.test/kwok-not-ready"
DELETE_DELAY = "pod-delete.stage.kwok.x-k8s.io/delay"


def _with_knobs(stage: dict[str, Any]) -> dict[str, Any]:
    name = stage["metadata"]["name"]
    if name == "pod-ready":
        stage["spec"]["selector"]["matchExpressions"].append(
            {"key": f'.metadata.annotations["{NOT_READY}"]', "operator": "DoesNotExist"})
    if name == "pod-delete":
        stage["spec"]["delay"] = {"durationMilliseconds": 0, "durationFrom": {
            "expressionFrom": f'.metadata.annotations["{DELETE_DELAY}"]'}}
    return stage

# What a node reports, by the runtime it runs. Versions and handler features are
# those each runtime reports through CRI (kubelet 1.30+ copies them into
# node.status.runtimeHandlers; containerd added userNamespaces in 2.0, CRI-O in
# 1.30: KEP-127; containerd 1.7 reports no features).
PROFILES: dict[str, dict[str, Any]] = {
    "containerd-2": {"runtime": "containerd://2.2.1", "kernel": "6.8.0-60-generic",
                     "os": "Ubuntu 24.04.2 LTS", "userns": True},
    "containerd-1.7": {"runtime": "containerd://1.7.27", "kernel": "6.8.0-60-generic",
                       "os": "Ubuntu 24.04.2 LTS", "userns": False},
    "cri-o": {"runtime": "cri-o://1.34.1", "kernel": "6.12.0-55.el10.x86_64",
              "os": "Red Hat Enterprise Linux CoreOS 10", "userns": True},
    "kernel-5.15": {"runtime": "containerd://2.2.1", "kernel": "5.15.0-140-generic",
                    "os": "Ubuntu 22.04.5 LTS", "userns": True},
}


def node_object(name: str, profile: str = "containerd-2", *, kubelet: str = "v1.35.4",
                labels: dict[str, str] | None = None, handlers: list[dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """A Node as its kubelet would register it, for KWOK to keep alive."""
    p = PROFILES[profile]
    features = {"recursiveReadOnlyMounts": True, "userNamespaces": True} if p["userns"] else None
    default_handlers = [{"name": n, **({"features": features} if features else {})} for n in ("", "runc")]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {MANAGED[0]: MANAGED[1], "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok", **(labels or {})},
        },
        "spec": {},
        "status": {
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux", "osImage": p["os"],
                "kernelVersion": p["kernel"], "containerRuntimeVersion": p["runtime"],
                "kubeletVersion": kubelet, "kubeProxyVersion": kubelet,
                "bootID": "", "machineID": "", "systemUUID": "",
            },
            "runtimeHandlers": default_handlers if handlers is None else handlers,
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"},
        },
    }


def _kwok_module_dir() -> Path:
    out = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
                         cwd=build.GOMOD / "kwok", capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


class Kwok:
    """One KWOK controller for every node carrying the MANAGED annotation."""

    def __init__(self, cluster: ControlPlane, workdir: Path) -> None:
        self.cluster = cluster
        self.dir = workdir
        self.process: Process | None = None

    def start(self) -> None:
        module = _kwok_module_dir()
        crd = module / "kustomize/crd/bases/kwok.x-k8s.io_clusterlogs.yaml"
        self.cluster.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                             yaml.safe_load(crd.read_text()))
        wait_for("the ClusterLogs CRD", lambda: self.cluster.request(
            "GET", "/apis/kwok.x-k8s.io/v1alpha1/clusterlogs"), 30)
        serving = self.cluster.pki.issue("kwok-server", "kwok", server=True, hosts=("127.0.0.1",))
        port = free_port()
        config = self.dir / "kwok.kubeconfig"
        self.cluster.write_kubeconfig(config, self.cluster.user("kwok-controller", ("system:masters",)))
        stages = self.dir / "kwok-stages.yaml"
        stages.write_text(yaml.safe_dump_all(
            _with_knobs(yaml.safe_load((module / "kustomize/stage" / name).read_text()))
            for name in STAGES))
        self.process = Process("kwok", [
            str(build.binary("kwok")), f"--kubeconfig={config}", f"--config={stages}",
            f"--manage-nodes-with-annotation-selector={MANAGED[0]}={MANAGED[1]}",
            f"--server-address=127.0.0.1:{port}", "--node-ip=127.0.0.1", f"--node-port={port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            "--enable-crds=ClusterLogs", "--node-lease-duration-seconds=40",
        ], self.dir / "logs")
        self.cluster.processes.append(self.process)

    def add_nodes(self, count: int, profile: str = "containerd-2", prefix: str = "kwok-node",
                  wait: bool = True, **kwargs: Any) -> list[str]:
        names = [f"{prefix}-{i}" for i in range(count)]
        for name in names:
            self.cluster.request("POST", "/api/v1/nodes", node_object(name, profile, **kwargs))
        if wait:
            wait_for(f"{count} KWOK nodes Ready", lambda: self._all_ready(names), 60 + count / 10,
                     [self.process] if self.process else [])
        return names

    def _all_ready(self, names: list[str]) -> bool:
        nodes = self.cluster.request("GET", "/api/v1/nodes")["items"]
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True"
                        for c in n.get("status", {}).get("conditions", []))}
        return set(names) <= ready

    def logs(self, name: str, log_file: Path, namespaces: list[str], pods: list[str] | None = None) -> None:
        """Pods matching the selector get `log_file` (CRI log format) as every container's log."""
        selector: dict[str, Any] = {"matchNamespaces": namespaces}
        if pods:
            selector["matchNames"] = pods
        self.cluster.request("POST", "/apis/kwok.x-k8s.io/v1alpha1/clusterlogs", {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
            "metadata": {"name": name},
            "spec": {"selector": selector, "logs": [{"logsFile": str(log_file), "follow": False}]},
        })


def cri_log(text: str, stream: str = "stdout") -> str:
    """Text in the CRI container-log format the kubelet (and KWOK) read back."""
    return "".join(f"2026-01-01T00:00:00.000000000Z {stream} F {line}\n" for line in text.splitlines())


def json_lines(obj: Any) -> str:
    return cri_log(json.dumps(obj))

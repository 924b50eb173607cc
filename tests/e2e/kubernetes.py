"""The executor as `zuul-k8s apply` deploys it, on the real node (tests/k8s/node.py).

Everything an operator does, in the order docs/getting-started.md gives it,
with the kit's real command line: `nodes prepare` on the node, `validate
--zuul-conf`, the namespace and the Secrets, `preflight`, then `apply`. The
real kubelet runs the executor pod (user namespace, unmasked /proc, the
kit's seccomp profile), its probes decide readiness, zuul-web streams live
logs from the pod's IP.

What this machine needs, each set where an operator of such a cluster would:
- the end-to-end Zuul listens on the node's host address (harness.Zuul
  `address`): the node's pods reach this machine there, through the node's
  default route, and nowhere else;
- the executor image goes from podman's store into the node's containerd
  (no registry here), `imagePullPolicy: Never`;
- the config (NODE_SETTINGS): this kernel runs no AppArmor, the executors
  run on this node only, and the CPU request leaves room for the rolling
  update's extra executor on a 2-CPU node.
"""

from __future__ import annotations

import base64
import functools
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import executor as executor_mod
from tests.e2e import harness
from zuul_k8s import config as kit_config
from zuul_k8s.cluster.client import Cluster

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "zuul-e2e"
# The kit's default ports: the pod has its own network namespace.
FINGER_PORT, PROMETHEUS_PORT = 7900, 9091


def node_settings(node_name: str) -> dict[str, Any]:
    """What the example config needs on the test's real node, and why."""
    return {
        "namespace": {"name": NAMESPACE},
        "workload": {"replicas": 1},
        # This machine's kernel runs no AppArmor (like RHEL or Fedora CoreOS nodes).
        "isolation": {"apparmor": "none"},
        # The session's cluster has KWOK nodes too; executors go where the kit prepared.
        "scheduling": {"nodeSelector": {"kubernetes.io/hostname": node_name}},
        # Two of these fit the node's 2 CPUs: the rolling update runs one more
        # executor (maxSurge 1) while the old one drains, plus the self-test's probe.
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
    }


@dataclass
class Deployment:
    """The executor deployed on the node, and what each step of the deployment printed."""

    zuul: harness.Zuul
    node: Any  # tests.k8s.node.Node
    kubeconfig: str
    workdir: Path
    config: Path
    zuul_conf: Path
    inventory: Path
    transcript: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @functools.cached_property
    def cluster(self) -> Cluster:
        return Cluster.connect(self.kubeconfig)

    def cli(self, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`zuul-k8s ARGV` as a user runs it (a process of its own), with the node's
        runtime on PATH for the node commands."""
        env = {**os.environ, "KUBECONFIG": self.kubeconfig,
               "PATH": f"{self.node.binaries['runc'].parent}:{os.environ['PATH']}"}
        return subprocess.run([sys.executable, "-m", "zuul_k8s", *argv], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=timeout)

    def step(self, name: str, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """A command whose exit must be 0; kept in the transcript."""
        done = self.transcript[name] = self.cli(*argv, timeout=timeout)
        if done.returncode != 0:
            raise harness.ZuulError(f"zuul-k8s {' '.join(argv)} exited {done.returncode}:\n"
                                    f"{done.stdout}{done.stderr}")
        return done

    def pods(self) -> list[dict[str, Any]]:
        return self.cluster.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", {
            "labelSelector": "app.kubernetes.io/component=executor"}).get("items", [])

    def ready_executors(self) -> list[dict[str, Any]]:
        return [p for p in self.pods() if not p["metadata"].get("deletionTimestamp") and _ready(p)]

    def log(self, pod: dict[str, Any]) -> str:
        return self.cluster.text(f"/api/v1/namespaces/{NAMESPACE}/pods/{pod['metadata']['name']}/log",
                                 container="zuul-executor")

    def events(self, pod_name: str) -> list[dict[str, Any]]:
        return self.cluster.request("GET", f"/api/v1/namespaces/{NAMESPACE}/events", {
            "fieldSelector": f"involvedObject.name={pod_name}"}).get("items", [])

    def executor_pid(self, pod: dict[str, Any]) -> int:
        """The host PID of the pod's executor container's first process (containerd's task list)."""
        status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "zuul-executor")
        container_id = status["containerID"].split("://", 1)[1]
        for line in self.node.ctr("tasks", "ls").splitlines()[1:]:
            task, pid, _state = line.split()
            if task == container_id:
                return int(pid)
        raise harness.ZuulError(f"containerd runs no task {container_id}")

    def processes(self, pod: dict[str, Any]) -> list[tuple[int, str, str]]:
        """(host pid, state, command name) of every process in the executor container's PID
        namespace, read from the host's /proc (the pod has no shell for `kubectl exec` here)."""
        pidns = os.readlink(f"/proc/{self.executor_pid(pod)}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns/pid") != pidns:
                    continue
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
            found.append((int(entry.name), rest.split()[0], name))
        return sorted(found)

    def registered(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The pod's executor in zuul-web's component list, by its hostname (the pod IP)."""
        return next((c for c in self.zuul.components()
                     if c.get("hostname") == pod["status"].get("podIP") and c.get("state") == "running"), None)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def secret(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def import_image(node: Any, tag: str) -> float:
    """The executor image into the node's containerd (what a registry pull does); seconds taken."""
    started = time.monotonic()
    node.import_from_podman(tag)
    return time.monotonic() - started


def deploy(zuul: harness.Zuul, node: Any, kubeconfig: str, workdir: Path) -> Deployment:
    """The operator's steps, from the node's preparation to a ready, registered executor
    (the image already on the node: import_image)."""
    document = executor_mod.kit_document(zuul.image, FINGER_PORT, PROMETHEUS_PORT, node_settings(node.name))
    config = workdir / "zuul-k8s.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    cfg = kit_config.load_config(str(config))
    conf = zuul.executor_zuul_conf(cfg)
    zuul_conf = workdir / "zuul.conf"
    zuul_conf.write_bytes(conf)
    zuul_conf.chmod(0o600)
    deployment = Deployment(zuul, node, kubeconfig, workdir, config, zuul_conf,
                            node.write_inventory(workdir / "inventory.yaml"))
    deployment.step("nodes prepare", "nodes", "prepare", "-i", str(deployment.inventory))
    deployment.step("validate", "validate", "-c", str(config), "--zuul-conf", str(zuul_conf))
    cluster = deployment.cluster
    cluster.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for name, data in zuul.secret_contents(cfg, conf).items():
        cluster.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", body=secret(name, data))
    deployment.transcript["preflight"] = deployment.cli("preflight", "-c", str(config))
    started = time.monotonic()
    deployment.step("apply", "apply", "-c", str(config), "--zuul-conf", str(zuul_conf), "--timeout", "600")
    zuul.timings["apply"] = time.monotonic() - started
    return deployment


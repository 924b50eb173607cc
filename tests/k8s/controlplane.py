"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler from the binary tests/k8s/build.py
builds, each its own process, with per-run PKI, RBAC and Node authorization,
and Pod Security admission configured from a file (as a cluster admin does).
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.k8s import build
from tests.k8s.pki import Authority, KeyPair, service_account_key
from tests.k8s.processes import Process, wait_for

SERVICE_CIDR = "10.96.0.0/24"  # allocated from, never routed: nothing sends traffic there

# Every request of a user that is not a component, once, when it completes: what a test
# reads to see exactly which requests the kit sent (kubernetes.io/docs/tasks/debug/
# debug-cluster/audit/). The components' own traffic is left out.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {"level": "None", "userGroups": ["system:nodes", "system:serviceaccounts"]},
        {"level": "None", "users": ["system:kube-controller-manager", "system:kube-scheduler",
                                    "system:apiserver", "kwok-controller"]},
        {"level": "Metadata"},
    ],
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Options:
    """What makes one control plane differ from another."""

    # `--emulated-version` (KEP-4330): the API server behaves as that older minor,
    # its feature gates' defaults included.
    emulated_version: str | None = None
    feature_gates: dict[str, bool] = field(default_factory=dict)
    # The PodSecurityConfiguration's defaults for unlabelled namespaces
    # (upstream's default is privileged/latest for all three modes).
    pod_security_defaults: dict[str, str] = field(default_factory=dict)
    # Address the API server listens on; a real node in its own network namespace
    # reaches it on the host end of its veth.
    bind_address: str = "127.0.0.1"
    controllers: bool = True  # controller-manager and scheduler; off for API-only servers


def kubeconfig(server: str, ca: Path, user: KeyPair, name: str = "zuul-k8s-test") -> dict[str, Any]:
    """A self-contained kubeconfig (certificates inline) for one user."""
    import base64

    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": data(ca)}}],
        "users": [{"name": name, "user": {"client-certificate-data": data(user.cert),
                                          "client-key-data": data(user.key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


class ControlPlane:
    """Start with `start()`, stop with `stop()`; `url` and `admin_kubeconfig` in between."""

    def __init__(self, workdir: Path, options: Options | None = None) -> None:
        self.dir = workdir
        self.options = options or Options()
        self.processes: list[Process] = []
        self.port = free_port(self.options.bind_address)
        self.url = f"https://{self.options.bind_address}:{self.port}"
        self.pki = Authority(workdir / "pki")
        self.admin_kubeconfig = workdir / "admin.kubeconfig"
        self.audit_log = workdir / "audit.log"

    # -- credentials -------------------------------------------------------

    def user(self, name: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate for a user: RBAC decides what it may do."""
        safe = name.replace(":", "_")
        return self.pki.issue(f"user-{safe}", name, orgs=groups)

    def write_kubeconfig(self, path: Path, user: KeyPair) -> Path:
        path.write_text(yaml.safe_dump(kubeconfig(self.url, self.pki.cert, user)))
        path.chmod(0o600)
        return path

    def node_kubeconfig(self, path: Path, node: str) -> Path:
        """The kubelet's identity for `node` (Node authorizer: system:node:NAME in system:nodes)."""
        return self.write_kubeconfig(path, self.user(f"system:node:{node}", ("system:nodes",)))

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        kube = str(build.binary("kube"))
        logs = self.dir / "logs"
        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.processes.append(Process("etcd", [
            kube, "etcd", "--name=test", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level=warn",
        ], logs))
        wait_for("etcd", lambda: _http_ok(f"{etcd_url}/health"), 60, self.processes)

        hosts = ("127.0.0.1", self.options.bind_address, "localhost", "10.96.0.1", "kubernetes",
                 "kubernetes.default", "kubernetes.default.svc")
        serving = self.pki.issue("apiserver", "kube-apiserver", server=True, hosts=hosts)
        kubelet_client = self.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                        orgs=("system:masters",))
        sa_key = service_account_key(self.dir / "pki")
        admission = self.dir / "admission.yaml"
        admission.write_text(yaml.safe_dump(self._admission_config()))
        audit_policy = self.dir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        argv = [
            kube, "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.options.bind_address}",
            f"--advertise-address={self.options.bind_address}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.pki.cert}",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}", f"--service-account-signing-key-file={sa_key}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--admission-control-config-file={admission}",
            f"--audit-policy-file={audit_policy}", f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json", "--audit-log-mode=blocking",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.dir / 'pki'}",
        ]
        argv += self._version_flags()
        self.processes.append(Process("kube-apiserver", argv, logs))

        admin = self.user("zuul-k8s-test-admin", ("system:masters",))
        self.write_kubeconfig(self.admin_kubeconfig, admin)
        self._ssl = ssl.create_default_context(cafile=str(self.pki.cert))
        self._ssl.load_cert_chain(str(admin.cert), str(admin.key))
        wait_for("kube-apiserver /readyz", lambda: self._get("/readyz") == "ok", timeout, self.processes)
        if not self.options.controllers:
            return
        common = ["--leader-elect=false", "--bind-address=127.0.0.1"]
        cm_config = self.write_kubeconfig(self.dir / "controller-manager.kubeconfig",
                                          self.user("system:kube-controller-manager"))
        self.processes.append(Process("kube-controller-manager", [
            kube, "kube-controller-manager", f"--kubeconfig={cm_config}", *common,
            f"--secure-port={free_port()}",
            f"--root-ca-file={self.pki.cert}", f"--service-account-private-key-file={sa_key}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={self.pki.cert}", f"--cluster-signing-key-file={self.pki.key}",
            *self._version_flags(),
        ], logs))
        sched_config = self.write_kubeconfig(self.dir / "scheduler.kubeconfig",
                                             self.user("system:kube-scheduler"))
        self.processes.append(Process("kube-scheduler", [
            kube, "kube-scheduler", f"--kubeconfig={sched_config}", *common,
            f"--secure-port={free_port()}", *self._version_flags(),
        ], logs))
        # The controller-manager is ready when it has created the default ServiceAccount.
        wait_for("the default ServiceAccount",
                 lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default"), timeout,
                 self.processes)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def check(self) -> None:
        """Raise if a component died (with the end of its log)."""
        for proc in self.processes:
            proc.check()

    # -- helpers -----------------------------------------------------------

    def _version_flags(self) -> list[str]:
        """The same emulated version and gates for every component (compatibility versions,
        KEP-4330: the apiserver, controller-manager and scheduler all take them)."""
        flags = []
        if self.options.emulated_version:
            flags.append(f"--emulated-version={self.options.emulated_version}")
        if self.options.feature_gates:
            gates = ",".join(f"{k}={str(v).lower()}" for k, v in sorted(self.options.feature_gates.items()))
            flags.append(f"--feature-gates={gates}")
        return flags

    def audit_events(self, user: str) -> list[dict[str, Any]]:
        """The audit events of one user's requests, oldest first."""
        events = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("user", {}).get("username") == user:
                events.append(event)
        return events

    def _admission_config(self) -> dict[str, Any]:
        defaults = {"enforce": "privileged", "enforce-version": "latest",
                    "audit": "privileged", "audit-version": "latest",
                    "warn": "privileged", "warn-version": "latest",
                    **self.options.pod_security_defaults}
        return {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AdmissionConfiguration",
            "plugins": [{
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": defaults,
                    "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": []},
                },
            }],
        }

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, context=self._ssl, timeout=5) as resp:
            body = resp.read().decode()
        return json.loads(body) if body.startswith("{") else body

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """An admin API call (for test setup), JSON in and out."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self._ssl, timeout=30) as resp:
            text = resp.read().decode()
        return json.loads(text) if text else None


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200

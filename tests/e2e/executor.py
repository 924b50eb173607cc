"""The zuul-executor container, run under podman exactly as the kit renders its pod.

The kit config is the built-in example with the test's image and ports (and
whatever a test overrides, e.g. `user.uid: 0`); `zuul_k8s.render` renders it
with the zuul.conf the test wrote (so the checksum annotation is real), and
pod.py reads the executor's pod from the render: security settings become
podman flags through the self-test's own translation
(zuul_k8s.selftest.podman), the Secrets are laid out at their mount paths with
their modes and owners as the kubelet would, the command, args, env and ports
are the container's. The only stand-ins: host networking (the pod IP is
a loopback address of its own, so the executor reaches ZooKeeper and git here
and zuul-web reaches its finger port), and a host directory for each
emptyDir/PVC.
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e import pod, process
from zuul_k8s import config as kit_config
from zuul_k8s import render, yamlio
from zuul_k8s.profiles import seccomp_root
from zuul_k8s.selftest.local import host_lsms
from zuul_k8s.selftest.podman import USERNS_SIZE, Options, Translation, translate

NAME_PREFIX = "zuul-k8s-e2e-executor-"
# Host networking: each pod's address is a loopback address of its own
# (127.0.0.0/8 all reaches lo), so executors register under distinct hostnames.
POD_IP_BASE = "127.0.0."


def merged(base: Any, override: Any) -> Any:
    """`override` deep-merged into `base` (mappings merge, anything else replaces)."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def kit_document(image: str, finger_port: int, prometheus_port: int,
                 overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The built-in example config (what `zuul-k8s init` writes) with the test's image and ports."""
    raw = yamlio.load_one(str(kit_config.EXAMPLE))
    raw = merged(raw, {"image": image, "imagePullPolicy": "Never",
                       "ports": {"finger": finger_port, "prometheus": prometheus_port}})
    return merged(raw, dict(overrides or {}))


def kit(image: str, finger_port: int, prometheus_port: int,
        overrides: Mapping[str, Any] | None = None) -> kit_config.Config:
    return kit_config.parse(kit_document(image, finger_port, prometheus_port, overrides), "the e2e kit config")


def secret_contents(cfg: kit_config.Config, zuul_conf: bytes, ssh_key: bytes,
                    zk: Mapping[str, bytes]) -> dict[str, dict[str, bytes]]:
    """The Secrets an operator creates (docs/getting-started.md), by the names the config gives."""
    secrets = cfg["secrets"]
    out = {secrets["zuulConf"]["name"]: {secrets["zuulConf"]["key"]: zuul_conf}}
    if "sshKey" in secrets:
        out.setdefault(secrets["sshKey"]["name"], {})[secrets["sshKey"]["key"]] = ssh_key
    if "zookeeperTls" in secrets:
        out.setdefault(secrets["zookeeperTls"]["name"], {}).update(zk)
    return out


def downward_fields(cfg: kit_config.Config, pod_name: str, pod_ip: str) -> dict[str, str]:
    return {"status.podIP": pod_ip, "status.hostIP": "127.0.0.1", "metadata.name": pod_name,
            "metadata.namespace": cfg.namespace, "spec.nodeName": socket.gethostname(),
            "spec.serviceAccountName": cfg.name}


@dataclass
class Layout:
    """Host directories standing for the pod's volumes; ids as the container's user namespace maps them."""

    root: Path
    userns_base: int | None  # None: hostUsers true, ids are the host's

    def host_id(self, container_id: int) -> int:
        if self.userns_base is None:
            return container_id
        if not 0 <= container_id < USERNS_SIZE:
            raise pod.Unsupported(f"id {container_id} is outside the pod's user namespace")
        return self.userns_base + container_id

    def volume(self, volume: pod.Volume, fs_group: int | None) -> Path:
        """The volume's directory, made once: files with the Secret's modes, owned root:fsGroup.

        The kubelet applies fsGroup to Secret and emptyDir volumes (group owner,
        setgid directories; a read-only Secret keeps its mode, group-readable).
        """
        path = self.root / volume.name
        if path.exists():
            return path
        path.mkdir(parents=True)
        group = self.host_id(fs_group if fs_group is not None else 0)
        for file in volume.files:
            target = path / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.content)
            target.chmod(file.mode)
            shutil.chown(target, self.host_id(0), group)
        if volume.kind == "dir":
            path.chmod(0o2777 if fs_group is not None else 0o777)
        else:
            path.chmod(0o2755 if fs_group is not None else 0o755)
        shutil.chown(path, self.host_id(0), group)
        return path


def podman_argv(plan: pod.Plan, translation: Translation, layout: Layout, image: str, name: str,
                hostname: str, extra_flags: Sequence[str] = ()) -> list[str]:
    argv = ["podman", "run", "--name", name, "--pull", "never", "--network", "host",
            "--hostname", hostname, *translation.flags]
    for key, value in plan.env:
        argv += ["--env", f"{key}={value}"]
    for mount in plan.mounts:
        source = layout.volume(mount.volume, plan.fs_group)
        if mount.sub_path is not None:
            source = source / mount.sub_path
        argv += ["--volume", f"{source}:{mount.path}" + (":ro" if mount.read_only else "")]
    if "--read-only" in translation.flags:
        # podman would add its own tmpfs on /tmp, /var/tmp and /run; the pod has
        # only the volumes it renders.
        argv.append("--read-only-tmpfs=false")
    if plan.entrypoint is not None:
        argv += ["--entrypoint", json.dumps(plan.entrypoint)]
    argv += [*extra_flags, image, *(plan.args or [])]
    return argv


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, str] | None:
    """(status, body), or None when nothing answers (what a kubelet's httpGet probe sees)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError:
        return None


@dataclass
class ExecutorPod:
    """A running executor container and what was read from its rendered pod."""

    name: str
    image: str
    pod_ip: str
    plan: pod.Plan
    translation: Translation
    argv: list[str]
    layout: Layout
    service: process.Service
    started: float  # time.monotonic() at `podman run`
    timings: dict[str, float] = field(default_factory=dict)
    zuul_conf_path: str = "/etc/zuul/zuul.conf"  # set by the harness from the render

    def command(self, name: str) -> None:
        """`zuul-executor <name>` on the executor's command socket (pause, unpause, graceful...)."""
        result = self.exec("zuul-executor", "-c", self.zuul_conf_path, name)
        if result.returncode != 0:
            raise RuntimeError(f"zuul-executor {name} failed: {result.stdout}{result.stderr}")

    def probe(self, kind: str) -> pod.Probe:
        for each in self.plan.probes:
            if each.kind == kind:
                return each
        raise LookupError(f"the rendered container has no {kind}")

    def probe_get(self, kind: str) -> tuple[int, str] | None:
        probe = self.probe(kind)
        return http_get(self.pod_ip, probe.port, probe.path, timeout=probe.timeout)

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds from `podman run` until the readiness probe's URL answers 200."""
        process.wait_for(lambda: (self.probe_get("readinessProbe") or (0, ""))[0] == 200,
                         "the executor's readiness endpoint", timeout, self.service)
        self.timings.setdefault("ready", time.monotonic() - self.started)
        return self.timings["ready"]

    def exec(self, *argv: str, user: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = ["podman", "exec", *(["--user", user] if user else []), self.name, *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def processes(self) -> list[tuple[int, int, str, str]]:
        """(pid, ppid, state, command) of every process in the container."""
        result = self.exec("ps", "-eo", "pid=,ppid=,stat=,args=")
        out = []
        for line in result.stdout.splitlines():
            parts = line.split(None, 3)
            if len(parts) >= 3:
                out.append((int(parts[0]), int(parts[1]), parts[2], parts[3] if len(parts) > 3 else ""))
        return out

    def signal(self, name: str = "TERM") -> None:
        subprocess.run(["podman", "kill", "--signal", name, self.name], capture_output=True, check=True)

    def wait_exit(self, timeout: float) -> int:
        self.service.process.wait(timeout)
        return self.service.process.returncode

    def log(self) -> str:
        return self.service.log.read_text(errors="replace")

    def stop(self) -> None:
        """As the kubelet stops a pod: SIGTERM, SIGKILL after the grace period; then remove it."""
        if self.service.running():
            subprocess.run(["podman", "stop", "--time", str(self.plan.grace_seconds), self.name],
                           capture_output=True, timeout=self.plan.grace_seconds + 60)
        self.remove()

    def remove(self) -> None:
        subprocess.run(["podman", "rm", "--force", "--ignore", "--time", "0", self.name],
                       capture_output=True, timeout=120)
        self.service.stop(timeout=10)
        shutil.rmtree(self.layout.root, ignore_errors=True)


def start(objects: list[Any], secrets: Mapping[str, Mapping[str, bytes]], image: str, log: Path,
          cfg: kit_config.Config, pod_ip: str, extra_flags: Sequence[str] = ()) -> ExecutorPod:
    """Runs the rendered executor under podman; returns at once (see ExecutorPod.wait_ready)."""
    name = NAME_PREFIX + uuid.uuid4().hex[:10]
    pod_name = f"{cfg.name}-{name[-10:]}"
    plan = pod.plan(objects, secrets, downward_fields(cfg, pod_name, pod_ip))
    apparmor, selinux = host_lsms()
    options = Options(runtime="containerd", seccomp_root=seccomp_root(), host_apparmor=apparmor,
                      host_selinux=selinux)
    translation = translate(plan.executor.template, plan.executor.container_path, plan.container,
                            options, "the render")
    host_users = plan.executor.template.spec.get("hostUsers")
    # Outside pytest's root-only tmp: runc mounts the sources as the pod's mapped root.
    root = Path(tempfile.mkdtemp(prefix="zuul-k8s-e2e-pod-", dir="/var/tmp"))
    root.chmod(0o711)
    layout = Layout(root, options.userns_base if host_users is False else None)
    try:
        argv = podman_argv(plan, translation, layout, image, name, pod_name, extra_flags)
        started = time.monotonic()
        service = process.start("zuul-executor", argv, log)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ExecutorPod(name, image, pod_ip, plan, translation, argv, layout, service, started)


def render_objects(cfg: kit_config.Config, zuul_conf: bytes) -> list[Any]:
    return render.render(cfg, zuul_conf)

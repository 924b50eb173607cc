"""Test nodes on this machine: one sshd per node, each in its own network and mount namespace.

Ansible reaches every node over real SSH, through a real inventory. A node's
namespace has its own address (a veth pair to a network namespace the test
made), and its own /var/lib, /run and (for the SELinux store) /etc/selinux:
a tmpfs over /var/lib and /run, and bind mounts of per-node copies of the
SELinux store and policy. So each node has independent state: what the play
writes on one node (the seccomp profile under /var/lib/kubelet, the SELinux
module in the store) is invisible to the others and to this machine.

A node may also be made to lack the SELinux tools (a non-executable file bound
over semodule) or to have a read-only kubelet seccomp root, to fail on purpose.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SELINUX_DIRS = (Path("/var/lib/selinux"), Path("/etc/selinux"))
SSHD = Path("/usr/sbin/sshd")
SUBNET = "10.213"  # 10.213.<node>.0/30, only between this machine and its own namespaces


@dataclass
class NodeSpec:
    name: str
    selinux_store: bool = True  # a private copy of this machine's store and policy
    hide_semodule: bool = False
    readonly_seccomp_root: bool = False
    hostvars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Node:
    spec: NodeSpec
    index: int
    root: Path
    netns: str
    address: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def policy_dir(self) -> Path:
        return self.root / "etc-selinux" / "default" / "policy"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _setup_script(node: Node, sshd_config: Path) -> str:
    """Shell run inside the node's new mount namespace, ending in sshd."""
    steps = ["set -e", "mount --make-rprivate /"]
    store_var, store_etc = node.root / "var-lib-selinux", node.root / "etc-selinux"
    steps += ["mount -t tmpfs -o mode=0755 zk8s-var-lib /var/lib",
              "mount -t tmpfs -o mode=0755 zk8s-run /run",
              "mkdir -p /run/sshd /var/lib/selinux /var/lib/kubelet"]
    if node.spec.selinux_store:
        steps += [f"mount --bind {store_var} /var/lib/selinux",
                  f"mount --bind {store_etc} /etc/selinux"]
    else:  # no store, no policy: like a node without SELinux
        steps += ["mount -t tmpfs -o mode=0755 zk8s-etc-selinux /etc/selinux"]
    if node.spec.hide_semodule:
        blank = node.root / "not-semodule"
        blank.write_text("")
        blank.chmod(0o644)
        steps += [f"mount --bind {blank} {shutil.which('semodule') or '/usr/sbin/semodule'}"]
    if node.spec.readonly_seccomp_root:
        steps += ["mkdir -p /var/lib/kubelet/seccomp",
                  "mount -t tmpfs -o ro,mode=0755 zk8s-ro /var/lib/kubelet/seccomp"]
    steps += [f"exec {SSHD} -D -e -f {sshd_config}"]
    return "\n".join(steps)


def _wait_for_port(address: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd on {address}:{port} did not answer: {log.read_text()[-2000:]}")


class SshNodes:
    """Start nodes with `start()`, get an inventory, `stop()` (always) at the end."""

    def __init__(self, workdir: Path, specs: list[NodeSpec]) -> None:
        self.workdir = workdir
        self.specs = specs
        self.nodes: list[Node] = []
        self.tag = f"zk{os.getpid() % 100000}"
        self.key = workdir / "id_ed25519"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        for index, spec in enumerate(self.specs, start=1):
            self._start_node(index, spec)

    def _start_node(self, index: int, spec: NodeSpec) -> None:
        root = self.workdir / spec.name
        root.mkdir()
        node = Node(spec, index, root, f"{self.tag}-{index}", f"{SUBNET}.{index}.2")
        self.nodes.append(node)
        outside, inside = f"{self.tag}v{index}a", f"{self.tag}v{index}b"
        _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", node.netns)
        _run("ip", "addr", "add", f"{SUBNET}.{index}.1/30", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        for argv in (("addr", "add", f"{node.address}/30", "dev", inside),
                     ("link", "set", inside, "up"), ("link", "set", "lo", "up")):
            _run("ip", "-n", node.netns, *argv)
        if spec.selinux_store:
            for source, target in zip(SELINUX_DIRS, ("var-lib-selinux", "etc-selinux"),
                                      strict=True):
                _run("cp", "-a", str(source), str(root / target))
        host_key = root / "ssh_host_ed25519_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        authorized = root / "authorized_keys"
        authorized.write_text(Path(f"{self.key}.pub").read_text())
        config = root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {node.address}", "Port 22", f"HostKey {host_key}",
            f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "Subsystem sftp /usr/lib/openssh/sftp-server", "",
        ]))
        log = root / "sshd.log"
        with log.open("wb") as out:
            node.process = subprocess.Popen(
                ["ip", "netns", "exec", node.netns, "unshare", "--mount", "--propagation",
                 "private", "sh", "-c", _setup_script(node, config)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        _wait_for_port(node.address, 22, node.process, log)

    def inventory(self, extra_hosts: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        common = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        hosts = {n.spec.name: {"ansible_host": n.address, **n.spec.hostvars} for n in self.nodes}
        hosts.update(extra_hosts or {})
        return {"all": {"vars": common, "hosts": hosts}}

    def in_node(self, name: str, command: str) -> str:
        """Run a shell command inside a node, over its own SSH (what Ansible sees)."""
        node = next(n for n in self.nodes if n.spec.name == name)
        proc = subprocess.run(
            ["ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{node.address}",
             command], capture_output=True, text=True, timeout=60)
        return proc.stdout + proc.stderr

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGTERM)  # the session we started
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(node.process.pid, signal.SIGKILL)
                    node.process.wait(timeout=10)
            subprocess.run(["ip", "netns", "del", node.netns], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{self.tag}v{node.index}a"],
                           capture_output=True)


"""A real Kubernetes node for the tests: the kubelet (from the kube binary),
containerd 2.2 and runc 1.4 (built from tests/k8s/gomod/node), pods in a
network namespace of their own, images imported from tarballs built here.

Layout (why each part sits where it does):

- containerd, its shims and every pod run in a network namespace the node
  creates, joined to the host by a veth pair in a private /30 (10.213.N.0/30:
  host end .1, node end .2); the pods sit on a CNI bridge behind the node end
  (10.214.N.0/24, Debian's containernetworking-plugins). Nothing is routed
  anywhere else.
- The kubelet runs in the host's network namespace: the test API server
  listens on 127.0.0.1, which no other network namespace can reach, and the
  kubelet refuses a loopback node IP (pkg/kubelet/kubelet_node_status.go,
  validateNodeIP). Its node IP is the host end of the veth, which is on a host
  interface as validateNodeIP demands, and the API server reaches it there for
  logs and exec. `makeIPTablesUtilChains: false` keeps it off the host's
  iptables; containerd's streaming server listens on the node end so the
  kubelet can proxy exec to it; a host route to the pod range lets the
  kubelet's HTTP probes reach pods.
- cgroup v1 (hybrid) with the cgroupfs driver, under this process's own memory
  cgroup (docs/testing-here.md); `failCgroupV1: false`.
- CAP_SYS_RESOURCE is missing here, so nothing may lower an oom_score_adj:
  containerd's `restrict_oom_score_adj`, kubelet `oomScoreAdj: 0`.
- The seccomp root is the kubelet root dir's `seccomp/` (the kubelet derives it
  from --root-dir), where `zuul-k8s nodes prepare` installs the kit's profile.
- No registry is reachable: the sandbox image is built here from
  gomod/node/cmd/pause, the test images by tests/runtime/images.py, and both
  are imported with `ctr images import`.
- With `hostUsers: false` runc's init runs as an unprivileged host uid, so the
  work directory's ancestors must be traversable (`open_path`).

`start_node(control_plane, workdir)` is what the test cluster calls; `launch`
takes plain paths for any API server. tests/README.md ("The real node") has
the details and what this machine showed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from tests.k8s import build
from tests.k8s.processes import Process, wait_for

if TYPE_CHECKING:
    from tests.k8s.controlplane import ControlPlane

NODE_NAME = "real-node"
MAX_NODES = 32  # network slots on one machine; parallel sessions take the next free one
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CGROUP_V1 = Path("/sys/fs/cgroup")
LOCK_DIR = Path("/run/lock")
PAUSE_IMAGE_NAME = "localhost/zuul-k8s-pause"
K8S_NAMESPACE = "k8s.io"  # containerd namespace the CRI plugin uses

# What tests/k8s/gomod/node builds, registered with the shared builder (cached by the
# module's content). containerd v2.2.x: no replace lines, btrfs needs cgo headers;
# runc v1.4.x needs cgo and libseccomp for its seccomp filter (docs/testing-here.md).
for _target in (
    build.Target("node", "containerd", "github.com/containerd/containerd/v2/cmd/containerd",
                 tags=("no_btrfs",)),
    build.Target("node", "containerd-shim-runc-v2",
                 "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", tags=("no_btrfs",)),
    build.Target("node", "ctr", "github.com/containerd/containerd/v2/cmd/ctr", tags=("no_btrfs",)),
    build.Target("node", "runc", "github.com/opencontainers/runc", cgo=True, tags=("seccomp",)),
    build.Target("node", "pause", "./cmd/pause"),
):
    build.register(_target)
NODE_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "pause")


# -- pure: addresses and configuration ------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One node's names and addresses on this machine, from its slot number."""

    index: int

    @property
    def netns(self) -> str:
        return f"zuul-k8s-node{self.index}"

    @property
    def host_veth(self) -> str:
        return f"zk8s{self.index}h"  # interface names: at most 15 characters

    @property
    def node_veth(self) -> str:
        return f"zk8s{self.index}n"

    @property
    def host_ip(self) -> str:
        return f"10.213.{self.index}.1"

    @property
    def node_ip(self) -> str:
        return f"10.213.{self.index}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.214.{self.index}.0/24"


@dataclass(frozen=True)
class Paths:
    """Everything the node writes, under one directory (removed on stop)."""

    workdir: Path

    @property
    def kubelet_root(self) -> Path:
        return self.workdir / "kubelet"

    @property
    def seccomp_root(self) -> Path:
        return self.kubelet_root / "seccomp"

    @property
    def containerd(self) -> Path:
        return self.workdir / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "cni" / "net.d"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def pod_logs(self) -> Path:
        return self.workdir / "pod-logs"


def cni_config(slot: Slot, paths: Paths) -> dict[str, Any]:
    """A bridge with host-local addresses; the gateway is the bridge in the node's netns."""
    return {
        "cniVersion": "1.0.0",
        "name": "zuul-k8s-node",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": slot.pod_cidr}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(paths.workdir / "cni" / "ipam"),
            },
        }],
    }


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml(tables: dict[str, dict[str, object]]) -> str:
    """TOML from {table: {key: scalar or list}} (no TOML writer in the standard library)."""
    lines = []
    for table, keys in tables.items():
        if table:
            lines.append(f"\n[{table}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in keys.items())
    return "\n".join(lines) + "\n"


def containerd_config(slot: Slot, paths: Paths, runc: Path, sandbox_image: str) -> str:
    """containerd 2.2's config (version 3). Key names: containerd
    internal/cri/config/config.go and cmd/containerd/server/config."""
    cri = "plugins.'io.containerd.cri.v1.runtime'"
    runc_runtime = f"{cri}.containerd.runtimes.runc"
    return toml({
        "": {
            "version": 3,
            "root": str(paths.containerd / "root"),
            "state": str(paths.containerd / "state"),
            "oom_score": 0,
        },
        "grpc": {"address": str(paths.socket)},
        "ttrpc": {"address": str(paths.socket) + ".ttrpc"},
        "debug": {"level": "info"},
        # exec/attach/port-forward: the kubelet (host netns) proxies to this address.
        "plugins.'io.containerd.grpc.v1.cri'": {
            "stream_server_address": slot.node_ip, "stream_server_port": "0",
        },
        "plugins.'io.containerd.cri.v1.images'": {"snapshotter": "overlayfs"},
        "plugins.'io.containerd.cri.v1.images'.pinned_images": {"sandbox": sandbox_image},
        cri: {
            # No CAP_SYS_RESOURCE here: never ask for an oom_score_adj below our own.
            "restrict_oom_score_adj": True,
            "enable_selinux": False,
            "disable_apparmor": True,
            # Pods' network namespaces under the state dir, not /var/run/netns.
            "netns_mounts_under_state_dir": True,
        },
        f"{cri}.containerd": {"default_runtime_name": "runc"},
        runc_runtime: {"runtime_type": "io.containerd.runc.v2"},
        f"{runc_runtime}.options": {"BinaryName": str(runc), "SystemdCgroup": False},
        f"{cri}.cni": {"bin_dirs": [str(CNI_BIN_DIR)], "conf_dir": str(paths.cni_conf_dir)},
        # Keep everything off the host's default paths: NRI's socket, /opt/containerd.
        "plugins.'io.containerd.nri.v1.nri'": {"disable": True},
        "plugins.'io.containerd.internal.v1.opt'": {"path": str(paths.containerd / "opt")},
    })


def kubelet_config(slot: Slot, paths: Paths, cgroup_root: str, client_ca: Path) -> dict[str, Any]:
    """KubeletConfiguration (kubelet.config.k8s.io/v1beta1) for this machine."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failCgroupV1": False,  # hybrid cgroup v1 host (docs/testing-here.md)
        "failSwapOn": False,
        "oomScoreAdj": 0,  # CAP_SYS_RESOURCE is missing: no negative score
        "address": slot.host_ip,
        "healthzBindAddress": slot.host_ip,
        "readOnlyPort": 0,
        "makeIPTablesUtilChains": False,  # the host's iptables are not ours
        "podLogsDir": str(paths.pod_logs),
        # Defaults outside --root-dir (kubelet flags and config defaults):
        "volumePluginDir": str(paths.workdir / "volume-plugins"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        # A shared test disk may be fuller than the defaults allow (10% / 15% free).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
    }


def kubelet_argv(kube: Path, paths: Paths, slot: Slot, kubeconfig: Path, name: str) -> list[str]:
    return [
        str(kube), "kubelet",
        f"--config={paths.workdir / 'kubelet.yaml'}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.kubelet_root / 'pki'}",  # default /var/lib/kubelet/pki, whatever the root
        f"--hostname-override={name}",
        f"--node-ip={slot.host_ip}",
        "--v=2",
    ]


def pause_image_archive(pause: bytes, name: str) -> bytes:
    """An OCI image-layout tarball holding one layer with /pause, for `ctr images import`.

    Deterministic: the same binary gives the same digests, so the tag is reused.
    """
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(pause), 0o755, 0
        tar.addfile(info, io.BytesIO(pause))
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    layer = gzip.compress(layer_tar.getvalue(), mtime=0)
    config = json.dumps({
        "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()

    def descriptor(media: str, blob: bytes) -> dict[str, Any]:
        return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
                "size": len(blob)}

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{**descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}],
    }).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
        for blob in (config, layer, manifest):
            files["blobs/sha256/" + hashlib.sha256(blob).hexdigest()] = blob
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# -- I/O: cgroups, network, mounts ----------------------------------------------


def memory_cgroup() -> str:
    """This process's memory cgroup (v1): the machine's supervisor accounts memory there."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    raise RuntimeError("no cgroup v1 memory controller in /proc/self/cgroup; the real node needs "
                       "the hybrid cgroup v1 layout of these machines (docs/testing-here.md)")


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy under /sys/fs/cgroup (v1 ones and the hybrid unified one)."""
    return sorted(p for p in CGROUP_V1.iterdir() if (p / "cgroup.procs").exists())


def make_cgroup(path: str) -> None:
    """`path` in every hierarchy; cpuset levels get their parent's cpus and mems
    (a new v1 cpuset is empty and takes no tasks)."""
    for hierarchy in cgroup_hierarchies():
        current = hierarchy
        for part in Path(path).relative_to("/").parts:
            current = current / part
            if not current.exists():
                current.mkdir()
                if (current / "cpuset.cpus").exists():
                    for knob in ("cpuset.cpus", "cpuset.mems"):
                        (current / knob).write_text((current.parent / knob).read_text())


def join_cgroup(path: str, pid: int) -> None:
    for hierarchy in cgroup_hierarchies():
        with contextlib.suppress(OSError):  # a hierarchy that refuses (e.g. unified in hybrid)
            (hierarchy / path.lstrip("/") / "cgroup.procs").write_text(str(pid))


def cgroup_pids(path: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / path.lstrip("/")
        if top.exists():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def kill_cgroup(path: str, timeout: float = 20) -> None:
    """SIGKILL everything in the cgroup subtree until it is empty (shims, pods, leftovers)."""
    deadline = time.monotonic() + timeout
    while pids := cgroup_pids(path):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {sorted(pids)} in cgroup {path} survive SIGKILL")
        time.sleep(0.1)


def remove_cgroup(path: str) -> None:
    """rmdir the subtree bottom-up in every hierarchy (the kernel removes the knob files)."""
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / path.lstrip("/")
        if not top.exists():
            continue
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            with contextlib.suppress(FileNotFoundError):
                directory.rmdir()
        with contextlib.suppress(FileNotFoundError):
            top.rmdir()


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory`, deepest (latest) first."""
    prefix = str(directory.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return list(reversed(found))


_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2  # linux/fs.h


def unmount_all(directory: Path) -> None:
    """Lazily unmount everything below `directory` (overlays, volumes, netns, shm)."""
    for _ in range(10):
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            if _libc.umount2(point.encode(), MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err not in (errno.EINVAL, errno.ENOENT):
                    raise OSError(err, f"umount {point}: {os.strerror(err)}")
    raise RuntimeError(f"mounts under {directory} keep coming back: {mounts_under(directory)[:5]}")


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def create_network(slot: Slot) -> None:
    """The node's netns, a veth pair to the host and a host route to the pod range."""
    _ip("netns", "add", slot.netns)
    try:
        _ip("link", "add", slot.host_veth, "type", "veth", "peer", "name", slot.node_veth,
            "netns", slot.netns)
        _ip("addr", "add", f"{slot.host_ip}/30", "dev", slot.host_veth)
        _ip("link", "set", slot.host_veth, "up")
        _ip("addr", "add", f"{slot.node_ip}/30", "dev", slot.node_veth, netns=slot.netns)
        _ip("link", "set", slot.node_veth, "up", netns=slot.netns)
        _ip("link", "set", "lo", "up", netns=slot.netns)
        _ip("route", "add", "default", "via", slot.host_ip, netns=slot.netns)
        # The node forwards between its veth and the pods' bridge (per-netns sysctl).
        subprocess.run(["ip", "netns", "exec", slot.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                       check=True, capture_output=True)
        _ip("route", "add", slot.pod_cidr, "via", slot.node_ip, "dev", slot.host_veth)
    except BaseException:
        delete_network(slot)
        raise


def delete_network(slot: Slot) -> None:
    """Deleting the netns deletes the veth pair, and the host route goes with its end."""
    subprocess.run(["ip", "netns", "delete", slot.netns], capture_output=True)
    subprocess.run(["ip", "link", "delete", slot.host_veth], capture_output=True)


# -- the node --------------------------------------------------------------------


@dataclass
class Node:
    """A started node; `stop()` removes every process, mount, cgroup and netns it made."""

    name: str
    slot: Slot
    paths: Paths
    cgroup: str
    binaries: dict[str, Path]
    processes: list[Process] = field(default_factory=list)
    lock: IO[str] | None = None
    opened: list[tuple[Path, int]] = field(default_factory=list)  # (directory, original mode)

    @property
    def seccomp_root(self) -> Path:
        return self.paths.seccomp_root

    @property
    def containerd_env(self) -> dict[str, str]:
        """containerd finds its shim on PATH."""
        bin_dir = str(self.binaries["containerd"].parent)
        return {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"}

    def ctr(self, *args: str, stdin: IO[bytes] | None = None, timeout: float = 600) -> str:
        argv = [str(self.binaries["ctr"]), "--address", str(self.paths.socket), "-n", K8S_NAMESPACE,
                *args]
        done = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace")

    def import_image(self, archive: Path) -> None:
        with archive.open("rb") as handle:
            self.ctr("images", "import", "-", stdin=handle)

    def import_from_podman(self, tag: str) -> None:
        """`podman save` streamed into `ctr images import`: no archive on disk (the
        end-to-end executor image is 2.4 GB, and imported once per node)."""
        save = subprocess.Popen(["podman", "save", "--format", "docker-archive", tag],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert save.stdout is not None and save.stderr is not None
        try:
            self.ctr("images", "import", "-", stdin=save.stdout, timeout=1200)
        finally:
            save.stdout.close()
            error = save.stderr.read().decode(errors="replace").strip()
            save.stderr.close()
            code = save.wait()
        if code != 0:
            raise RuntimeError(f"podman save {tag}: {error}")

    def write_inventory(self, path: Path) -> Path:
        """An Ansible inventory for `zuul-k8s nodes prepare|verify|cleanup` on this node:
        a local connection, the seccomp profile aimed at this kubelet's seccomp root."""
        path.write_text(yaml.safe_dump({"all": {"hosts": {self.name: {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "zuul_k8s_seccomp_profile_path": str(self.seccomp_root / "profiles" / "zuul-executor.json"),
        }}}}))
        return path

    @contextlib.contextmanager
    def runtime_on_path(self) -> Iterator[None]:
        """This node's runc first on PATH meanwhile, as on any node (`nodes prepare` reads it there)."""
        previous = os.environ["PATH"]
        os.environ["PATH"] = f"{self.binaries['runc'].parent}:{previous}"
        try:
            yield
        finally:
            os.environ["PATH"] = previous

    def check(self) -> None:
        for proc in self.processes:
            proc.check()

    def stop(self) -> None:
        """Stop the kubelet, then kill everything in the node's cgroups, unmount, delete."""
        for proc in reversed(self.processes):  # kubelet first, then containerd
            proc.stop(timeout=20)
        self.processes.clear()
        errors = teardown(self.slot, self.cgroup, self.paths.workdir)
        for directory, mode in reversed(self.opened):
            with contextlib.suppress(FileNotFoundError):
                directory.chmod(mode)
        self.opened.clear()
        if self.lock is not None:
            self.lock.truncate(0)
            self.lock.close()
            self.lock = None
        if errors:
            raise RuntimeError("the real node did not stop cleanly: " + "; ".join(errors))


def teardown(slot: Slot, cgroup: str, workdir: Path) -> list[str]:
    """Remove what a node left: its processes (shims and pods outlive containerd),
    mounts, network namespace, cgroups and files. Also run for a slot whose
    previous owner died (its lock file names what it left)."""
    errors: list[str] = []
    for step in (lambda: kill_cgroup(cgroup), lambda: unmount_all(workdir),
                 lambda: delete_network(slot), lambda: remove_cgroup(cgroup)):
        try:
            step()
        except (OSError, RuntimeError) as err:
            errors.append(str(err))
    remove_log_links(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return errors


# Where the kubelet links every container's log, whatever its config says
# (pkg/kubelet/kubelet.go, DefaultContainerLogsDir).
CONTAINER_LOG_LINKS = Path("/var/log/containers")


def remove_log_links(workdir: Path) -> None:
    """The kubelet's links to this node's container logs (it leaves them when killed)."""
    prefix = str(workdir.resolve()) + "/"
    if CONTAINER_LOG_LINKS.is_dir():
        for link in CONTAINER_LOG_LINKS.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(prefix):
                link.unlink(missing_ok=True)


def open_path(directory: Path) -> list[tuple[Path, int]]:
    """Let anyone traverse `directory`'s ancestors; returns what changed, to undo.

    With `hostUsers: false` runc's init runs as the pod's mapped root, an
    unprivileged uid on the host, and must reach the rootfs under containerd's
    state dir and the volumes under the kubelet's root: a 0700 temporary
    directory above them fails pod creation with "error preparing rootfs:
    remount-private dst=.../rootfs, flags=MS_PRIVATE: permission denied"
    (seen here; why containerd makes its own dirs 0711).
    """
    changed = []
    for parent in reversed(directory.resolve().parents):
        mode = parent.stat().st_mode & 0o7777
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
            changed.append((parent, mode))
    return changed


def _claim_slot() -> tuple[Slot, IO[str]]:
    """The first free slot, held by an flock for the node's life (parallel sessions).

    A free slot whose lock file still names a cgroup and workdir belongs to a run
    that died (SIGKILL, a crash): clean up after it first.
    """
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for index in range(MAX_NODES):
        handle = (LOCK_DIR / f"zuul-k8s-node{index}.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        slot = Slot(index)
        handle.seek(0)
        with contextlib.suppress(ValueError):
            left = json.loads(handle.read() or "null")
            if left:
                teardown(slot, left["cgroup"], Path(left["workdir"]))
        delete_network(slot)
        handle.seek(0)
        handle.truncate()
        return slot, handle
    raise RuntimeError(f"all {MAX_NODES} real-node slots are in use on this machine")


def pause_image(pause_binary: Path) -> tuple[str, Path]:
    """The sandbox image's name and its archive, cached next to the binaries."""
    data = pause_binary.read_bytes()
    tag = hashlib.sha256(data).hexdigest()[:16]
    name = f"{PAUSE_IMAGE_NAME}:{tag}"
    archive = pause_binary.parent / f"pause-image-{tag}.tar"
    if not archive.exists():
        archive.with_suffix(".tmp").write_bytes(pause_image_archive(data, name))
        archive.with_suffix(".tmp").replace(archive)
    return name, archive


def image_archive(tag: str) -> Path:
    """An archive of a tests/runtime/images.py image for `ctr images import`, cached by
    its tag (a hash of the recipe): `podman save` once, the image built first if missing
    (that build waits for the machine-wide image lock; a cached archive does not)."""
    from tests.runtime import images

    directory = build.cache_root() / "images"
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / (tag.replace("/", "_").replace(":", "_") + ".tar")
    if archive.exists():
        return archive
    if not images.image_exists(tag):
        recipe = next((r for r in (images.BASE, images.ZUUL) if r.tag == tag), None)
        if recipe is None:
            raise RuntimeError(f"image {tag} is not in podman's store and no recipe builds it")
        images.build(recipe)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    done = subprocess.run(["podman", "save", "--format", "docker-archive", "-o", str(tmp), tag],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"podman save {tag}: {done.stderr.strip()}")
    tmp.replace(archive)
    return archive


def launch(workdir: Path, kubeconfig: Path, client_ca: Path, *, name: str = NODE_NAME,
           images: Sequence[Path] = (), get_node: Callable[[str], Any] | None = None,
           timeout: float = 180) -> Node:
    """Start a node whose kubelet uses `kubeconfig` (a system:node:NAME identity)
    and trusts `client_ca` for the API server's kubelet-client certificate.

    `images` are archives for `ctr images import`; `get_node(name)` (e.g. an
    admin GET of the Node) lets it wait until the Node is Ready.
    """
    kube = build.binary("kube")
    binaries = {each: build.binary(each) for each in NODE_BINARIES}
    slot, lock = _claim_slot()
    paths = Paths(workdir)
    cgroup = f"{memory_cgroup().rstrip('/')}/zuul-k8s-node{slot.index}"
    node = Node(name, slot, paths, cgroup, binaries, lock=lock)
    lock.write(json.dumps({"cgroup": cgroup, "workdir": str(workdir.resolve())}))
    lock.flush()
    try:
        for directory in (paths.containerd, paths.cni_conf_dir, paths.seccomp_root, paths.logs):
            directory.mkdir(parents=True, exist_ok=True)
        node.opened = open_path(paths.workdir)
        paths.workdir.chmod(0o711)
        sandbox, pause_archive = pause_image(binaries["pause"])
        (paths.cni_conf_dir / "10-zuul-k8s-node.conflist").write_text(
            json.dumps(cni_config(slot, paths), indent=2))
        (paths.containerd / "config.toml").write_text(
            containerd_config(slot, paths, binaries["runc"], sandbox))
        (paths.workdir / "kubelet.yaml").write_text(
            yaml.safe_dump(kubelet_config(slot, paths, cgroup, client_ca)))
        create_network(slot)
        make_cgroup(cgroup)
        make_cgroup(f"{cgroup}/runtime")

        containerd = Process("containerd", [
            "nsenter", f"--net=/run/netns/{slot.netns}", "--",
            str(binaries["containerd"]), f"--config={paths.containerd / 'config.toml'}",
        ], paths.logs, env=node.containerd_env)
        node.processes.append(containerd)
        join_cgroup(f"{cgroup}/runtime", containerd.proc.pid)
        wait_for("containerd", lambda: node.ctr("version") and True, 60, node.processes, interval=0.5)
        node.import_image(pause_archive)
        for archive in images:
            node.import_image(archive)

        kubelet = Process("kubelet", kubelet_argv(kube, paths, slot, kubeconfig, name), paths.logs)
        node.processes.append(kubelet)
        join_cgroup(f"{cgroup}/runtime", kubelet.proc.pid)
        if get_node is not None:
            wait_for(f"node {name} Ready", lambda: _ready(get_node(name)), timeout, node.processes,
                     interval=1)
    except BaseException as err:
        # stop() removes the logs: keep their ends in the message.
        tails = "\n".join(f"--- end of {p.log.name}:\n{p.tail()}" for p in node.processes)
        with contextlib.suppress(RuntimeError):
            node.stop()
        if isinstance(err, RuntimeError | TimeoutError) and tails:
            raise type(err)(f"{err}\n{tails}") from err
        raise
    return node


def _ready(node: dict[str, Any] | None) -> bool:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def start_node(control_plane: ControlPlane, workdir: Path, *, name: str = NODE_NAME,
               image_tags: Sequence[str] | None = None, timeout: float = 180) -> Node:
    """The real node joined to the test control plane, Ready, with the test images
    (default: the runtime tests' base image: bookworm, bwrap, python3, user zuul)."""
    from urllib.error import HTTPError

    from tests.runtime.images import BASE

    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = control_plane.node_kubeconfig(workdir.parent / f"{name}.kubeconfig", name)
    tags = [BASE.tag] if image_tags is None else list(image_tags)

    def get_node(node_name: str) -> Any:
        try:
            return control_plane.request("GET", f"/api/v1/nodes/{node_name}")
        except HTTPError as err:
            if err.code == 404:
                return None
            raise

    return launch(workdir, kubeconfig, control_plane.pki.cert, name=name,
                  images=[image_archive(tag) for tag in tags], get_node=get_node,
                  timeout=timeout)


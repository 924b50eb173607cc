"""A real node's run that dies outright (SIGKILL, a crash) leaves processes
(containerd's shims and the pods outlive it), mounts, a network namespace and
cgroups behind; the next run that takes the same slot removes them. Real
cgroups, mounts and namespaces: needs root and the hybrid cgroup v1 layout."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.k8s import node
from tests.tools import require_tool


@pytest.fixture()
def root_only() -> None:
    require_tool("ip")
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, cgroups, mounts)")


def _mounted(point: Path) -> bool:
    return str(point) in Path("/proc/self/mountinfo").read_text()


def test_the_next_run_removes_what_a_killed_run_left(root_only: None) -> None:
    slot, lock = node._claim_slot()
    workdir = Path(tempfile.mkdtemp(prefix="zuul-k8s-node-test-")) / "node"
    cgroup = f"{node.memory_cgroup().rstrip('/')}/zuul-k8s-node{slot.index}"
    mount = workdir / "containerd" / "shm"
    mount.mkdir(parents=True)
    leftover = None
    try:
        # What a run leaves when it is killed: its record, a namespace, a mount,
        # a process in its cgroup (a shim, a pod).
        lock.write(json.dumps({"cgroup": cgroup, "workdir": str(workdir)}))
        lock.flush()
        node.create_network(slot)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], check=True)
        node.make_cgroup(f"{cgroup}/runtime")
        leftover = subprocess.Popen(["sleep", "300"])
        node.join_cgroup(f"{cgroup}/runtime", leftover.pid)
        lock.close()  # the flock goes with the dead process, the record stays

        again, lock = node._claim_slot()
        assert again == slot  # the first free slot, unless a parallel session took it
        assert leftover.wait(timeout=10) == -9
        assert not _mounted(mount)
        assert not workdir.exists()
        assert slot.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                text=True).stdout
        assert not any((h / cgroup.lstrip("/")).exists() for h in node.cgroup_hierarchies())
        assert lock.tell() == 0 and Path(lock.name).read_text() == ""  # a clean record
    finally:
        if leftover is not None and leftover.poll() is None:
            leftover.kill()
        node.teardown(slot, cgroup, workdir)
        workdir.parent.rmdir()
        lock.close()

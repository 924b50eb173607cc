"""Pytest fixtures for the real cluster (registered in tests/conftest.py).

`k8s` is one cluster for the whole session: built from Go modules and started
on loopback, or the cluster ZUUL_K8S_TEST_KUBECONFIG names (then tests that
need the built-in KWOK nodes or the real node skip, saying so). Without Go the
cluster tests skip locally and fail on CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.build import BuildError
from tests.k8s.controlplane import ControlPlane, Options
from tests.k8s.harness import TestCluster
from tests.k8s.kwok import Kwok
from tests.tools import ON_CI, require_tool

EXTERNAL = os.environ.get("ZUUL_K8S_TEST_KUBECONFIG")


@dataclass
class Cluster:
    """What a test gets: an admin kubeconfig and, on the built-in cluster, its parts."""

    kubeconfig: str
    control_plane: ControlPlane | None = None
    kwok: Kwok | None = None

    def require_kwok(self) -> Kwok:
        if self.kwok is None:
            pytest.skip("needs the built-in cluster's KWOK nodes; ZUUL_K8S_TEST_KUBECONFIG names another cluster")
        return self.kwok

    def user_kubeconfig(self, path: Path, user: str, groups: tuple[str, ...] = ()) -> str:
        """A kubeconfig for a user of the test's own: RBAC decides what it may do
        (groups=("system:masters",) for everything)."""
        plane = self.require_control_plane()
        return str(plane.write_kubeconfig(path, plane.user(user, groups)))

    def require_control_plane(self) -> ControlPlane:
        if self.control_plane is None:
            pytest.skip("needs the built-in control plane (its PKI issues test users); "
                        "ZUUL_K8S_TEST_KUBECONFIG names another cluster")
        return self.control_plane


@contextlib.contextmanager
def real_node(k8s: Cluster, name: str) -> Iterator[Any]:
    """A real node (tests/k8s/node.py) named `name` on the session's control plane, for as
    long as the block runs; a missing tool skips locally and fails on CI."""
    from tests.k8s import node

    plane = k8s.require_control_plane()
    for tool in ("ip", "nsenter", "podman", "debootstrap"):
        require_tool(tool)
    if not (node.CNI_BIN_DIR / "bridge").exists():
        message = f"{node.CNI_BIN_DIR}/bridge is missing: install containernetworking-plugins"
        pytest.fail(message) if ON_CI else pytest.skip(message)
    workdir = Path(tempfile.mkdtemp(prefix=f"zuul-k8s-{name}-"))
    started = node.start_node(plane, workdir / "node", name=name)
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _missing(why: str) -> None:
    message = f"the real Kubernetes cannot be built or started: {why}"
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message + " (install Go 1.26 and reach the Go module proxy)")


def start_cluster(options: Options | None = None, *, kwok: bool = True) -> TestCluster:
    """A started cluster, or a skip (a failure on CI) saying why it cannot run here."""
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        _missing("go is not installed")
    cluster = TestCluster(options, kwok=kwok)
    try:
        return cluster.start()
    except BuildError as err:
        _missing(str(err))
        raise


@pytest.fixture(scope="session")
def k8s() -> Iterator[Cluster]:
    if EXTERNAL:
        yield Cluster(EXTERNAL)
        return
    cluster = start_cluster()
    try:
        yield Cluster(str(cluster.kubeconfig), cluster.control_plane, cluster.kwok)
    finally:
        cluster.stop()

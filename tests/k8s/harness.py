"""One test cluster: a control plane, optionally KWOK nodes and the real node,
started together and torn down together (processes and files)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from tests.k8s.controlplane import ControlPlane, Options
from tests.k8s.kwok import Kwok


class TestCluster(AbstractContextManager["TestCluster"]):
    __test__ = False  # not a pytest test class

    def __init__(self, options: Options | None = None, *, kwok: bool = True, real_node: bool = False,
                 workdir: Path | None = None) -> None:
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="zuul-k8s-cluster-"))
        self.control_plane = ControlPlane(self.dir, options)
        self.kwok: Kwok | None = Kwok(self.control_plane, self.dir) if kwok else None
        self.want_real_node = real_node
        self.node = None  # the real node (tests/k8s/node.py), when started

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.admin_kubeconfig

    def start(self) -> TestCluster:
        try:
            self.control_plane.start()
            if self.kwok:
                self.kwok.start()
            if self.want_real_node:
                from tests.k8s import node

                self.node = node.start_node(self.control_plane, self.dir / "node")
        except BaseException:
            self.stop()
            raise
        return self

    def check(self) -> None:
        """Raise if a process of the cluster (a control-plane component, KWOK, the node) died."""
        self.control_plane.check()
        if self.node is not None:
            self.node.check()

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None
        self.control_plane.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TestCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

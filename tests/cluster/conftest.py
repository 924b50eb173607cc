"""The Kubernetes API for the cluster tests: the real control plane built from
Go modules (tests/k8s) with KWOK nodes, or the real cluster that
ZUUL_K8S_TEST_KUBECONFIG names (then the tests that need the built-in
cluster's KWOK nodes or PKI skip, saying so).

The loopback double (tests/kubeapi, fixtures `double` and `double_kubeconfig`)
stays only for faults a real server cannot be made to produce on demand:

- a watch answered 410 Gone at a chosen moment (a real server does so only
  once etcd has compacted the watched revision): test_apply's
  test_rollout_survives_a_compacted_watch;
- an answer held back after the request took effect, so that a Ctrl-C lands
  between the two (a slow PATCH of the self-test's Job):
  test_selftest_job's test_ctrl_c_with_the_patch_in_flight_cleans_up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.fixtures import Cluster
from tests.k8s.kwok import cri_log
from tests.kubeapi.controller import Controller, node
from tests.kubeapi.server import ApiServer


@pytest.fixture
def double() -> Iterator[ApiServer]:
    """The running double with two ready nodes, for the faults listed above only."""
    api = ApiServer()
    for name in ("node-a", "node-b"):
        api.store("Node", node(name), created=True)
    api.url = api.serve()  # type: ignore[attr-defined]
    controller = Controller(api)
    controller.start()
    try:
        yield api
    finally:
        controller.shutdown()
        api.shutdown()


@pytest.fixture
def kubeconfig_path(k8s: Cluster) -> str:
    """The kubeconfig the kit is pointed at: the real control plane's (an admin)."""
    return k8s.kubeconfig


@pytest.fixture
def double_kubeconfig(double: ApiServer, tmp_path: Path) -> str:
    """A kubeconfig for the double, for the tests of faults only it can inject."""
    path = tmp_path / "kubeconfig"
    path.write_text(double.kubeconfig(double.url))  # type: ignore[attr-defined]
    return str(path)


@pytest.fixture
def namespace(kubeconfig_path: str) -> Iterator[str]:
    """A namespace name of the test's own (the tests share a real cluster), deleted after."""
    from zuul_k8s.cluster.client import ApiError, Cluster

    name = f"zuul-test-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        Cluster.connect(kubeconfig_path).request("DELETE", f"/api/v1/namespaces/{name}")
    except ApiError as err:
        if err.status != 404:
            raise


# The runtime tests' podman setup and images, reused (tests/runtime/conftest.py).
from tests.runtime.conftest import base_image, no_bwrap_image, podman_env  # noqa: E402, F401


@dataclass(frozen=True)
class Pool:
    """KWOK nodes of the cluster tests' own: configs select them by label, so nodes that
    other tests add (old, tainted, cordoned) never take these tests' pods."""

    names: list[str]
    label: str

    @property
    def scheduling(self) -> dict[str, Any]:
        """The config's `scheduling` that keeps the executor (and the probe) on the pool."""
        return {"nodeSelector": {POOL_LABEL: self.label}}


POOL_LABEL = "zuul-k8s.test/pool"


def add_pool(k8s: Cluster, label: str, count: int = 2, profile: str = "containerd-2",
             prefix: str | None = None, **kwargs: Any) -> Pool:
    """`count` Ready KWOK nodes `PREFIX-0` ... (PREFIX: the label) labelled POOL_LABEL=label."""
    kwok = k8s.require_kwok()
    names = kwok.add_nodes(count, profile, prefix=prefix or label, labels={POOL_LABEL: label},
                           **kwargs)
    return Pool(names, label)


@pytest.fixture(scope="session")
def pool(k8s: Cluster) -> Pool:
    """Two nodes like a good production node (containerd 2.2 with user namespaces,
    Linux 6.8) for the whole session: KWOK makes executor pods Ready, Job pods Succeed."""
    return add_pool(k8s, "zuul-cluster")


@pytest.fixture
def own_nodes(k8s: Cluster, kubeconfig_path: str) -> Iterator[Callable[..., Pool]]:
    """Nodes for one test, deleted after it: add(count, profile, name=..., pool=...,
    spec=...) adds them to a new pool, or to `pool` (names `pool.label-name-i`), with
    `spec` (taints, unschedulable) patched in."""
    from zuul_k8s.cluster.client import MERGE_PATCH
    from zuul_k8s.cluster.client import Cluster as Api

    api = Api.connect(kubeconfig_path)
    added: list[str] = []

    def add(count: int = 2, profile: str = "containerd-2", *, name: str = "node",
            pool: Pool | None = None, spec: dict[str, Any] | None = None) -> Pool:
        label = pool.label if pool else f"t{uuid.uuid4().hex[:6]}"
        made = add_pool(k8s, label, count, profile, prefix=f"{label}-{name}")
        added.extend(made.names)
        for added_node in made.names if spec else ():
            api.request("PATCH", f"/api/v1/nodes/{added_node}", None, {"spec": spec}, MERGE_PATCH)
        return Pool([*(pool.names if pool else []), *made.names], label)

    yield add
    for name in added:
        api.request("DELETE", f"/api/v1/nodes/{name}")


@pytest.fixture(scope="session")
def probe_logs(base_image: str, no_bwrap_image: str,  # noqa: F811
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The probe's real reports, for KWOK to serve as the self-test pods' logs: KWOK
    runs no container, so the probe runs here under podman, once per session, with the
    default config's executor pod settings translated as `selftest --local` does
    ("pass": the base image, "fail": the image without bwrap). CRI log files."""
    from zuul_k8s.config import load_config
    from zuul_k8s.profiles import seccomp_root
    from zuul_k8s.render import render
    from zuul_k8s.selftest import local
    from zuul_k8s.selftest.podman import Options, translate

    executor = local.find_executor(render(load_config(None)), "the default config")
    apparmor, selinux = local.host_lsms()
    options = Options(seccomp_root=seccomp_root(), host_apparmor=apparmor, host_selinux=selinux)
    translation = translate(executor.template, executor.container_path, executor.container,
                            options, "the default config")
    logs = {}
    directory = tmp_path_factory.mktemp("probe-logs")
    for outcome, image in (("pass", base_image), ("fail", no_bwrap_image)):
        report = local.run_probe(image, translation)
        assert report["ok"] is (outcome == "pass"), report
        logs[outcome] = directory / f"{outcome}.log"
        logs[outcome].write_text(cri_log(json.dumps(report, indent=2)))  # as the probe prints it
    return logs


@pytest.fixture
def serve_report(k8s: Cluster, kubeconfig_path: str, namespace: str,
                 probe_logs: dict[str, Path]) -> Iterator[Callable[[str], None]]:
    """serve_report("pass"|"fail"): every pod in the test's namespace logs that report
    (a ClusterLogs object, replaced on each call, deleted after the test)."""
    from zuul_k8s.cluster.client import Cluster as Api

    kwok = k8s.require_kwok()
    api = Api.connect(kubeconfig_path)
    served: list[str] = []

    def drop() -> None:
        while served:
            api.request("DELETE", f"/apis/kwok.x-k8s.io/v1alpha1/clusterlogs/{served.pop()}")

    def serve(outcome: str) -> None:
        drop()
        name = f"{namespace}-{outcome}"
        kwok.logs(name, probe_logs[outcome], [namespace])
        served.append(name)

    yield serve
    drop()


@pytest.fixture
def rbac_user(k8s: Cluster, kubeconfig_path: str,
              tmp_path: Path) -> Iterator[Callable[[str, list[Any]], str]]:
    """rbac_user(namespace, rules): a kubeconfig for a user of its own whom RBAC grants
    exactly those access.Rule(s) (a Role in the namespace, a ClusterRole for the rest)."""
    from zuul_k8s.cluster.client import Cluster as Api

    api = Api.connect(kubeconfig_path)
    cluster_wide: list[str] = []

    def make(namespace: str, rules: list[Any]) -> str:
        user = f"zuul-test-{uuid.uuid4().hex[:6]}"
        subject = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
        for namespaced, kind, base in ((True, "Role", f"/apis/rbac.authorization.k8s.io/v1/"
                                        f"namespaces/{namespace}"),
                                       (False, "ClusterRole", "/apis/rbac.authorization.k8s.io/v1")):
            granted = [{"apiGroups": [r.group], "resources": [r.resource], "verbs": [r.verb]}
                       for r in rules if r.namespaced is namespaced]
            api.request("POST", f"{base}/{kind.lower()}s", body={
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                "metadata": {"name": user}, "rules": granted})
            api.request("POST", f"{base}/{kind.lower()}bindings", body={
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{kind}Binding",
                "metadata": {"name": user}, "subjects": subject,
                "roleRef": {"kind": kind, "name": user, "apiGroup": "rbac.authorization.k8s.io"}})
        cluster_wide.append(user)
        return k8s.user_kubeconfig(tmp_path / f"{user}.kubeconfig", user)

    yield make
    for name in cluster_wide:
        for kind in ("clusterrolebindings", "clusterroles"):
            api.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/{kind}/{name}")

"""A Kubernetes API for the cluster tests: the loopback double, or a real
cluster when ZUUL_K8S_TEST_KUBECONFIG names one (then tests that need the
double's failure hooks skip, saying so)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.helpers import REAL
from tests.kubeapi.controller import Controller, node
from tests.kubeapi.server import ApiServer


@pytest.fixture
def double() -> Iterator[ApiServer]:
    """The running double with two ready nodes; skips against a real cluster."""
    if REAL:  # tests say why with helpers.needs_double; this is the backstop
        pytest.skip("needs the API double (its hooks or its nodes); ZUUL_K8S_TEST_KUBECONFIG "
                    "points at a real cluster")
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
def kubeconfig_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The kubeconfig the kit is pointed at: the real cluster's, or one for the double."""
    if REAL:
        return REAL
    api: ApiServer = request.getfixturevalue("double")
    path = tmp_path / "kubeconfig"
    path.write_text(api.kubeconfig(api.url))  # type: ignore[attr-defined]
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
from tests.runtime.conftest import base_image, podman_env  # noqa: E402, F401


@pytest.fixture
def podman_double(double: ApiServer, base_image: str) -> ApiServer:  # noqa: F811
    """The double whose Job pods run for real under podman (about 10 s per pod)."""
    from tests.kubeapi.podrun import PodmanRunner

    double.pod_runner = PodmanRunner()
    return double


@pytest.fixture(scope="session")
def no_bwrap_image(base_image: str) -> str:  # noqa: F811
    """The base image without bwrap: a new executor image whose self-test must fail."""
    import subprocess

    tag = base_image.replace("zuul-k8s-probe-base", "zuul-k8s-probe-nobwrap")
    if subprocess.run(["podman", "image", "exists", tag]).returncode == 0:
        return tag
    name = "zuul-k8s-test-nobwrap"
    subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True, check=True)
    subprocess.run(["podman", "run", "--name", name, base_image, "/bin/rm", "/usr/bin/bwrap"],
                   capture_output=True, check=True)
    try:
        subprocess.run(["podman", "commit", "--quiet", name, tag], capture_output=True, check=True)
    finally:
        subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True)
    return tag

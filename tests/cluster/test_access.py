"""The access table (zuul_k8s.cluster.access) against what the kit really sends: every
request that reaches the API during preflight, apply, self-test and an upgrade that
rolls back is one of the rules preflight reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import PODMAN, needs_double, run_cli, write_config
from tests.cluster.test_preflight import _secrets
from zuul_k8s.cluster import access
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK
from zuul_k8s.render import render

pytestmark = [pytest.mark.cluster, pytest.mark.runtime]


def test_required_follows_the_rendered_kinds() -> None:
    config = load_config(None)
    texts = [r.text for r in access.required(render(config))]
    assert "get deployments.apps" in texts and "patch deployments.apps" in texts
    assert "patch statefulsets.apps" not in texts  # a Deployment config never touches one
    assert "patch namespaces" in texts and "get poddisruptionbudgets.policy" in texts
    assert "patch jobs.batch" in texts and "create jobs.batch" not in texts
    assert len(texts) == len(set(texts))


@needs_double("it records every request the double serves; " + PODMAN)
def test_every_request_is_in_the_access_table(
        podman_double: Any, kubeconfig_path: str, namespace: str, base_image: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _secrets(Cluster.connect(kubeconfig_path), namespace)
    config = write_config(tmp_path, namespace)  # the default image: its pods never run podman
    podman_double.calls.clear()  # from here on, only the kit's own requests
    kube = ("--kubeconfig", kubeconfig_path)
    assert run_cli(capsys, "preflight", "-c", config, *kube)[0] == EXIT_OK
    assert run_cli(capsys, "apply", "-c", config, *kube)[0] == EXIT_OK
    assert run_cli(capsys, "selftest", "-c", config, *kube, "--all-nodes",
                   "--image", base_image)[0] == EXIT_OK
    podman_double.unready_images.add(base_image)  # canary passes, the rollout stalls
    code, out, err = run_cli(capsys, "upgrade", "--image", base_image, "-c", config, *kube,
                             "--timeout", "2", "--rollback-on-failure")
    assert code == EXIT_FAILED and "rolled back" in out, out + err
    calls = set(podman_double.calls)
    assert {("patch", "batch", "jobs"), ("get", "", "pods/log"), ("watch", "", "pods"),
            ("list", "apps", "replicasets"), ("patch", "apps", "deployments")} <= calls, calls
    objects = render(load_config(config))
    missing = sorted(c for c in calls if not access.covered(*c, objects))
    assert missing == [], f"requests the access table does not list: {missing}"

"""The access table (zuul_k8s.cluster.access) against what the kit really sends: every
request the real API server audits during preflight, apply, self-test and an upgrade
that rolls back is one of the rules preflight reviews, and those rules are enough."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Pool
from tests.cluster.helpers import run_cli, write_config
from tests.cluster.test_preflight import _secrets
from tests.k8s.fixtures import Cluster
from tests.k8s.kwok import NOT_READY
from zuul_k8s.cluster import access
from zuul_k8s.cluster.client import Cluster as Api
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
    # A server-side apply that creates the object is authorized as create too.
    assert "create deployments.apps" in texts and "create jobs.batch" in texts
    assert "patch jobs.batch" in texts and "get jobs.batch" not in texts
    assert len(texts) == len(set(texts))


def _requests(events: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(RBAC verb, group, resource[/subresource]) of each audited resource request (a
    non-resource URL such as /version has no objectRef: every user may read those)."""
    found = set()
    for event in events:
        ref = event.get("objectRef")
        if ref:
            resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            found.add((event["verb"], ref.get("apiGroup", ""), resource))
    return found


def test_every_request_is_in_the_access_table_and_the_table_is_enough(
        k8s: Cluster, rbac_user: Callable[[str, list[Any]], str], kubeconfig_path: str,
        namespace: str, pool: Pool, serve_report: Callable[[str], None], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A user whom real RBAC grants exactly the table's rules runs preflight, apply, a
    self-test on every node and an upgrade that rolls back; the API server's audit log of
    that user is every request the kit sent, and each is in the table. The probe's pods
    log the probe's real report from podman (conftest.probe_logs); the new executors of
    the upgrade never get Ready (KWOK's NOT_READY annotation), so it rolls back."""
    plane = k8s.require_control_plane()
    _secrets(Api.connect(kubeconfig_path), namespace)
    serve_report("pass")
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    user = rbac_user(namespace, access.required(render(load_config(config))))
    username = Path(user).stem  # conftest.rbac_user names the file after the user
    kube = ("--kubeconfig", user)
    code, out, err = run_cli(capsys, "preflight", "-c", config, *kube)
    assert code == EXIT_OK and "verdict: READY" in out, out + err
    code, out, err = run_cli(capsys, "apply", "-c", config, *kube)
    assert code == EXIT_OK, out + err
    code, out, err = run_cli(capsys, "selftest", "-c", config, *kube, "--all-nodes")
    assert code == EXIT_OK, out + err
    stalls = write_config(tmp_path, namespace, "stalls.yaml", scheduling=pool.scheduling,
                          podAnnotations={NOT_READY: "true"})
    code, out, err = run_cli(capsys, "upgrade", "--image", "quay.io/zuul-ci/zuul-executor:13.0.0",
                             "-c", stalls, *kube, "--timeout", "8", "--rollback-on-failure")
    assert code == EXIT_FAILED and "rolled back" in out, out + err
    calls = _requests(plane.audit_events(username))
    assert {("patch", "batch", "jobs"), ("get", "", "pods/log"), ("watch", "", "pods"),
            ("list", "apps", "replicasets"), ("patch", "apps", "deployments"),
            ("create", "authorization.k8s.io", "selfsubjectaccessreviews")} <= calls, calls
    objects = render(load_config(config))
    missing = sorted(c for c in calls if not access.covered(*c, objects))
    assert missing == [], f"requests the access table does not list: {missing}"

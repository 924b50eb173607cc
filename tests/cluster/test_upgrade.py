"""`zuul-k8s upgrade`: canary, rolling update, self-test after; a failing canary
changes nothing; an interrupted upgrade resumes; a failed rollout rolls back.

The real control plane rolls the Deployment on KWOK nodes: the executors get
Ready, the probe's Job pods Succeed and log the probe's real report from podman
(conftest.probe_logs, "pass" or "fail" per test). A new executor that never gets
Ready carries KWOK's NOT_READY annotation; an old executor that drains for a
while carries KWOK's DELETE_DELAY (tests/k8s/kwok.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Pool
from tests.cluster.helpers import deployment_path, run_cli, write_config
from tests.k8s.kwok import DELETE_DELAY, NOT_READY
from tests.tools import REPO
from zuul_k8s.cluster.client import MERGE_PATCH, Cluster
from zuul_k8s.cluster.upgrade import STATE_ANNOTATION
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK

pytestmark = [pytest.mark.cluster, pytest.mark.runtime]
OLD = "quay.io/zuul-ci/zuul-executor:12.1.0"
Serve = Callable[[str], None]


def _installed(kubeconfig: str, ns: str, pool: Pool, tmp_path: Path,
               capsys: pytest.CaptureFixture[str], **overrides: Any) -> str:
    config = write_config(tmp_path, ns, image=OLD, scheduling=pool.scheduling, **overrides)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig)[0] == EXIT_OK
    return config


def _stalls(tmp_path: Path, ns: str, pool: Pool, **overrides: Any) -> str:
    """The config again, whose new executors never get Ready on KWOK."""
    return write_config(tmp_path, ns, "stalls.yaml", scheduling=pool.scheduling,
                        podAnnotations={NOT_READY: "true"}, **overrides)


def _drain_for(kubeconfig: str, ns: str, seconds: int) -> None:
    """The running executors take `seconds` to stop once deleted (their builds)."""
    cluster = Cluster.connect(kubeconfig)
    for pod in cluster.request("GET", f"/api/v1/namespaces/{ns}/pods")["items"]:
        cluster.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}", None,
                        {"metadata": {"annotations": {DELETE_DELAY: f"{seconds}s"}}}, MERGE_PATCH)


def _deployment(kubeconfig: str, ns: str) -> dict[str, Any]:
    found = Cluster.connect(kubeconfig).get(deployment_path(ns))
    assert found is not None
    return found


def _image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_failing_canary_changes_nothing(kubeconfig_path: str, namespace: str, pool: Pool,
                                        serve_report: Serve, no_bwrap_image: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("fail")
    before = _deployment(kubeconfig_path, namespace)
    code, out, err = run_cli(capsys, "upgrade", "--image", no_bwrap_image, "-c", config,
                             "--kubeconfig", kubeconfig_path)
    assert code == EXIT_FAILED, err
    assert "canary: self-test with image " + no_bwrap_image in out
    assert "env.bwrap" in out and "FAIL" in out
    assert f"canary failed: the executors were not changed and still run {OLD}" in out
    after = _deployment(kubeconfig_path, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert _image(after) == OLD


def test_upgrade_rolls_one_at_a_time_and_tests_after(
        kubeconfig_path: str, namespace: str, pool: Pool, serve_report: Serve, base_image: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("pass")
    code, out, err = run_cli(capsys, "upgrade", "--image", base_image, "-c", config,
                             "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, out + err
    canary = out.index("canary: self-test")
    rollout = out.index(f"Deployment {namespace}/zuul-executor: configured")
    after = out.index("after the upgrade: self-test")
    assert canary < rollout < out.index("draining") < after
    assert out.count("draining (graceful stop") == 2 and out.count(": stopped") == 2
    assert f"upgraded: the executors run {base_image}" in out
    deployment = _deployment(kubeconfig_path, namespace)
    assert _image(deployment) == base_image
    state = json.loads(deployment["metadata"]["annotations"][STATE_ANNOTATION])
    assert state == {"target": base_image, "previous": OLD, "phase": "done"}  # template dropped
    code, out, _ = run_cli(capsys, "upgrade", "--image", base_image, "-c", config,
                           "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK and "already run" in out and "canary" not in out


def test_failed_rollout_rolls_back(kubeconfig_path: str, namespace: str, pool: Pool,
                                   serve_report: Serve, base_image: str,
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("pass")  # the canary passes
    code, out, err = run_cli(capsys, "upgrade", "--image", base_image, "-c",
                             _stalls(tmp_path, namespace, pool),
                             "--kubeconfig", kubeconfig_path, "--timeout", "6",
                             "--rollback-on-failure")
    assert code == EXIT_FAILED, err
    # --timeout is the total: the upgrade's rollout gets half, the rollback keeps the rest.
    assert "waiting up to 6s for the rollouts (2 rolls" in out
    assert "the rollout did not finish within 3s" in out, out
    assert f"rolled back: the executors run {OLD} again" in out
    deployment = _deployment(kubeconfig_path, namespace)
    assert _image(deployment) == OLD
    assert json.loads(deployment["metadata"]["annotations"][STATE_ANNOTATION])["phase"] == \
        "rolled-back"


def test_interrupted_upgrade_resumes(kubeconfig_path: str, namespace: str, pool: Pool,
                                     serve_report: Serve, base_image: str,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("pass")
    _drain_for(kubeconfig_path, namespace, 4)  # time to interrupt while an executor drains
    argv = [sys.executable, "-m", "zuul_k8s", "upgrade", "--image", base_image, "-c", config,
            "--kubeconfig", kubeconfig_path]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=os.environ.copy())
    seen = ""
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    while "draining" not in seen and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
    assert "draining" in seen, seen + (process.stderr.read() if process.stderr else "")
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert "upgraded" not in rest
    annotations = _deployment(kubeconfig_path, namespace)["metadata"]["annotations"]
    state = json.loads(annotations[STATE_ANNOTATION])
    assert state["phase"] == "rolling"

    code, out, err = run_cli(capsys, "upgrade", "--image", base_image, "-c", config,
                             "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, out + err
    assert f"resuming the upgrade to {base_image} (from {OLD}" in out
    assert "canary:" not in out and "after the upgrade: self-test" in out
    assert _image(_deployment(kubeconfig_path, namespace)) == base_image


def test_rollback_restores_the_exact_previous_template(
        kubeconfig_path: str, namespace: str, pool: Pool, serve_report: Serve, base_image: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config change (grace period, resources) and a new image, whose rollout fails: the
    rollback restores the template the cluster ran before, not today's config with the old
    image."""
    _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("pass")
    before = _deployment(kubeconfig_path, namespace)["spec"]["template"]
    changed = _stalls(tmp_path, namespace, pool, image=OLD, gracefulStopSeconds=60,
                      resources={"requests": {"cpu": "1", "memory": "2Gi"}})
    code, out, err = run_cli(capsys, "upgrade", "--image", base_image, "-c", changed,
                             "--kubeconfig", kubeconfig_path, "--timeout", "6",
                             "--rollback-on-failure")
    assert code == EXIT_FAILED, out + err
    assert "rolling back to the previous pod template (image " + OLD + ")" in out
    deployment = _deployment(kubeconfig_path, namespace)
    assert deployment["spec"]["template"] == before
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    state = json.loads(deployment["metadata"]["annotations"][STATE_ANNOTATION])
    assert state["phase"] == "rolled-back" and state["template"] == before


"""The self-test as a Job: built from the executor's pod, run for real (the
double runs Job pods under podman), reports read from the pod logs, pods that
never start explained, and everything cleaned up."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import HOOKS, PODMAN, needs_double, write_config
from zuul_k8s.cli import main
from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK
from zuul_k8s.render import namespace_labels

pytestmark = pytest.mark.cluster


def _namespace(cluster: Cluster, name: str, level: str = "baseline") -> None:
    cluster.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": namespace_labels(level, 35)}})


def _args(config: str, kubeconfig: str, **extra: Any) -> argparse.Namespace:
    defaults = {"node": None, "all_nodes": False, "image": None, "timeout": 300, "start_timeout": 120,
                "output": "text"}
    return argparse.Namespace(config=config, kubeconfig=kubeconfig, **{**defaults, **extra})


def test_job_is_the_executor_pod_with_the_probe() -> None:
    workload = selftest_job.executor_workload(load_config(None))
    configmap, jobs = selftest_job.build(workload, "img:1", ["node-a", "node-b"], "abc", 300)
    assert "def main()" in configmap["data"]["probe.py"]
    assert [j["metadata"]["name"] for j in jobs] == ["zuul-k8s-selftest-abc-0",
                                                      "zuul-k8s-selftest-abc-1"]
    executor = workload["spec"]["template"]["spec"]
    for job, node in zip(jobs, ["node-a", "node-b"], strict=True):
        spec = job["spec"]["template"]["spec"]
        assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
        assert spec["hostUsers"] is False and spec["securityContext"] == executor["securityContext"]
        container = spec["containers"][0]
        assert container["securityContext"] == executor["containers"][0]["securityContext"]
        assert container["image"] == "img:1"
        assert container["command"] == ["python3", "/zuul-k8s/probe.py"]
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                           "values": [node]}]}]
        # The executor's ServiceAccount (its imagePullSecrets pull the image the same way).
        assert spec["serviceAccountName"] == executor["serviceAccountName"] == "zuul-executor"
        # The probe and the executor's emptyDir state volume where the executor mounts it (its
        # filesystem must take idmap mounts with hostUsers false); no Secret volume.
        assert spec["volumes"] == [
            {"name": "probe", "configMap": {"name": "zuul-k8s-selftest-abc", "defaultMode": 0o444}},
            {"name": "state", "emptyDir": {"sizeLimit": "80Gi"}}]
        assert container["volumeMounts"] == [
            {"name": "probe", "mountPath": "/zuul-k8s", "readOnly": True},
            {"name": "state", "mountPath": "/var/lib/zuul"}]
        # The probe must not count as an executor pod.
        assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == \
            "selftest"


def test_job_keeps_the_service_account_for_a_statefulset_with_pvc_state() -> None:
    config = load_config(None)
    data = {**config.data, "workload": {**config.data["workload"], "kind": "StatefulSet"},
            "state": {**config.data["state"], "type": "pvc", "size": "10Gi"}}
    workload = selftest_job.executor_workload(type(config)(config.source, data))
    _, jobs = selftest_job.build(workload, None, [None], "abc", 300)
    spec = jobs[0]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "zuul-executor"
    assert [v["name"] for v in spec["volumes"]] == ["probe"]  # a PVC is not copied


def _leftovers(cluster: Cluster, namespace: str) -> list[str]:
    jobs = cluster.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    cms = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                          {"labelSelector": "app.kubernetes.io/component=selftest"})["items"]
    return [o["metadata"]["name"] for o in jobs + cms]


@needs_double(PODMAN)
@pytest.mark.runtime
def test_all_nodes_run_the_probe_for_real(podman_double: Any, kubeconfig_path: str,
                                          namespace: str, base_image: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    code = main(["selftest", "-c", write_config(tmp_path, namespace, image=base_image),
                 "--kubeconfig", kubeconfig_path, "--all-nodes"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out + err
    assert "node node-a (pod zuul-k8s-selftest-" in out and "node node-b (pod" in out
    assert out.count("bwrap.proc") == 2 and "FAIL" not in out
    assert "self-test passed on every node" in out
    assert "cleaned up" in err and _leftovers(cluster, namespace) == []


@needs_double(PODMAN)
@pytest.mark.runtime
def test_failing_probe_gives_the_diagnosis(podman_double: Any, kubeconfig_path: str,
                                           namespace: str, no_bwrap_image: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    code = selftest_job.run_cluster_selftest(
        _args(write_config(tmp_path, namespace), kubeconfig_path, image=no_bwrap_image,
              output="json"))
    import json
    document = json.loads(capsys.readouterr().out)
    assert code == EXIT_FAILED and document["ok"] is False
    node = document["nodes"][0]
    failed = [c["id"] for c in node["report"]["checks"] if c["status"] == "fail"]
    assert "env.bwrap" in failed
    assert node["diagnoses"] and _leftovers(cluster, namespace) == []


@needs_double(HOOKS + " (an image no node can pull)")
@pytest.mark.parametrize(("case", "expected"), [
    ("image", "the image cannot be pulled"),
    ("node", "no node can take the pod (unschedulable)"),
    ("admission", 'violates PodSecurity "restricted:v1.35"'),
])
def test_pod_that_never_starts_is_explained(double: Any, kubeconfig_path: str, namespace: str,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            case: str, expected: str) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace, level="restricted" if case == "admission" else "baseline")
    extra: dict[str, Any] = {"start_timeout": 2}
    if case == "image":
        double.missing_images.add("registry.example/zuul-executor:missing")
        extra["image"] = "registry.example/zuul-executor:missing"
    if case == "node":
        extra["node"] = "node-gone"
    code = selftest_job.run_cluster_selftest(_args(write_config(tmp_path, namespace),
                                                   kubeconfig_path, **extra))
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "no report: the probe's pod never started" in out and expected in out
    assert "fix:" in out and _leftovers(cluster, namespace) == []


@needs_double(HOOKS + " (a slow answer to the Job's PATCH)")
@pytest.mark.parametrize("when", ["patch in flight", "waiting for the pod"])
def test_ctrl_c_cleans_up(double: Any, kubeconfig_path: str, namespace: str, tmp_path: Path,
                          when: str) -> None:
    """SIGINT to a running `zuul-k8s selftest`: its Jobs and ConfigMap are deleted, also the
    Job whose PATCH the server had carried out but not yet answered."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.tools import REPO

    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    if when == "patch in flight":
        double.slow[("patch", "jobs")] = 30.0
    argv = [sys.executable, "-m", "zuul_k8s", "selftest", "-c", write_config(tmp_path, namespace),
            "--kubeconfig", kubeconfig_path, "--node", "node-gone", "--start-timeout", "60"]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not double.list("Job", namespace):
        time.sleep(0.1)
    assert double.list("Job", namespace), "the self-test never created its Job"
    if when == "waiting for the pod":
        while time.monotonic() < deadline and not double.list("Pod", namespace):
            time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "interrupted" in err and "cleaned up" in err and "Traceback" not in err
    assert _leftovers(cluster, namespace) == []

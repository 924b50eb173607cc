"""The self-test as a Job: built from the executor's pod, run for real (the
double runs Job pods under podman), reports read from the pod logs, pods that
never start explained, and everything cleaned up."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import write_config
from zuul_k8s.cli import main
from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK
from zuul_k8s.render import namespace_labels

pytestmark = pytest.mark.cluster


def _namespace(cluster: Cluster, name: str = "zuul-test", level: str = "baseline") -> None:
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
        # The probe must not count as an executor pod.
        assert spec.get("volumes") == [{"name": "probe", "configMap": {
            "name": "zuul-k8s-selftest-abc", "defaultMode": 0o444}}]
        assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == \
            "selftest"


def _leftovers(cluster: Cluster) -> list[str]:
    jobs = cluster.request("GET", "/apis/batch/v1/namespaces/zuul-test/jobs")["items"]
    cms = cluster.request("GET", "/api/v1/namespaces/zuul-test/configmaps",
                          {"labelSelector": "app.kubernetes.io/component=selftest"})["items"]
    return [o["metadata"]["name"] for o in jobs + cms]


@pytest.mark.runtime
def test_all_nodes_run_the_probe_for_real(podman_double: Any, kubeconfig_path: str,
                                          base_image: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster)
    code = main(["selftest", "-c", write_config(tmp_path, image=base_image), "--kubeconfig", kubeconfig_path,
                 "--all-nodes"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out + err
    assert "node node-a (pod zuul-k8s-selftest-" in out and "node node-b (pod" in out
    assert out.count("bwrap.proc") == 2 and "FAIL" not in out
    assert "self-test passed on every node" in out
    assert "cleaned up" in err and _leftovers(cluster) == []


@pytest.mark.runtime
def test_failing_probe_gives_the_diagnosis(podman_double: Any, kubeconfig_path: str,
                                           no_bwrap_image: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster)
    code = selftest_job.run_cluster_selftest(
        _args(write_config(tmp_path), kubeconfig_path, image=no_bwrap_image, output="json"))
    import json
    document = json.loads(capsys.readouterr().out)
    assert code == EXIT_FAILED and document["ok"] is False
    node = document["nodes"][0]
    failed = [c["id"] for c in node["report"]["checks"] if c["status"] == "fail"]
    assert "env.bwrap" in failed
    assert node["diagnoses"] and _leftovers(cluster) == []


@pytest.mark.parametrize(("case", "expected"), [
    ("image", "the image cannot be pulled"),
    ("node", "no node can take the pod (unschedulable)"),
    ("admission", 'violates PodSecurity "restricted:v1.35"'),
])
def test_pod_that_never_starts_is_explained(double: Any, kubeconfig_path: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], case: str,
                                            expected: str) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, level="restricted" if case == "admission" else "baseline")
    extra: dict[str, Any] = {"start_timeout": 2}
    if case == "image":
        double.missing_images.add("registry.example/zuul-executor:missing")
        extra["image"] = "registry.example/zuul-executor:missing"
    if case == "node":
        extra["node"] = "node-gone"
    code = selftest_job.run_cluster_selftest(_args(write_config(tmp_path), kubeconfig_path,
                                                   **extra))
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "no report: the probe's pod never started" in out and expected in out
    assert "fix:" in out and _leftovers(cluster) == []

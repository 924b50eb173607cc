"""The self-test as a Job: built from the executor's pod, run through the real
control plane on KWOK nodes (the pods' logs are the probe's real reports from
podman, conftest.probe_logs), reports read from the pod logs, pods that never
start explained, and everything cleaned up."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Pool
from tests.cluster.helpers import create_namespace, write_config
from zuul_k8s.cli import main
from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK
from zuul_k8s.render import namespace_labels

pytestmark = pytest.mark.cluster


def _namespace(cluster: Cluster, name: str, level: str = "baseline") -> None:
    """The namespace and the executor's ServiceAccount, which the probe's pods use (a
    real server refuses a pod whose ServiceAccount is missing)."""
    create_namespace(cluster, name, namespace_labels(level, 35), ("zuul-executor",))


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
        empty_dirs = [v for v in executor["volumes"] if "emptyDir" in v]
        assert [v["name"] for v in empty_dirs] == ["state", "tmp"]
        assert spec["volumes"] == [
            {"name": "probe", "configMap": {"name": "zuul-k8s-selftest-abc", "defaultMode": 0o444}},
            *empty_dirs]
        assert container["volumeMounts"] == [
            {"name": "probe", "mountPath": "/zuul-k8s", "readOnly": True},
            {"name": "state", "mountPath": "/var/lib/zuul"}, {"name": "tmp", "mountPath": "/tmp"}]
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
    assert [v["name"] for v in spec["volumes"]] == ["probe", "tmp"]  # a PVC is not copied


def _leftovers(cluster: Cluster, namespace: str) -> list[str]:
    jobs = cluster.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    cms = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                          {"labelSelector": "app.kubernetes.io/component=selftest"})["items"]
    return [o["metadata"]["name"] for o in jobs + cms]


@pytest.mark.runtime
def test_all_nodes_run_the_probe(kubeconfig_path: str, namespace: str, pool: Pool,
                                 serve_report: Callable[[str], None], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """One Job per eligible node, through the real scheduler, Job controller and pod log
    API. KWOK runs no container: each pod's log is the probe's real report from podman
    with the same pod settings (conftest.probe_logs)."""
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    serve_report("pass")
    code = main(["selftest", "-c", write_config(tmp_path, namespace, scheduling=pool.scheduling),
                 "--kubeconfig", kubeconfig_path, "--all-nodes"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, out + err
    for name in pool.names:
        assert f"node {name} (pod zuul-k8s-selftest-" in out, out
        assert re.search(rf"zuul-k8s-selftest-\w+-\d: pod \S+ runs on {name}", err), err
    assert out.count("bwrap.proc") == len(pool.names) and "FAIL" not in out
    assert "self-test passed on every node" in out
    assert "cleaned up" in err and _leftovers(cluster, namespace) == []


@pytest.mark.runtime
def test_failing_probe_gives_the_diagnosis(kubeconfig_path: str, namespace: str, pool: Pool,
                                           no_bwrap_image: str,
                                           serve_report: Callable[[str], None], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The pod's log is the probe's real report from the image without bwrap (podman,
    conftest.probe_logs): the Job Succeeds on KWOK, the report says FAIL."""
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    serve_report("fail")
    code = selftest_job.run_cluster_selftest(
        _args(write_config(tmp_path, namespace, scheduling=pool.scheduling), kubeconfig_path,
              image=no_bwrap_image, output="json"))
    document = json.loads(capsys.readouterr().out)
    assert code == EXIT_FAILED and document["ok"] is False
    node = document["nodes"][0]
    failed = [c["id"] for c in node["report"]["checks"] if c["status"] == "fail"]
    assert "env.bwrap" in failed
    assert node["node"] in pool.names
    assert node["diagnoses"] and _leftovers(cluster, namespace) == []


@pytest.mark.parametrize(("case", "expected"), [
    ("node", "no node can take the pod (unschedulable)"),
    ("admission", 'violates PodSecurity "restricted:v1.35"'),
])
def test_pod_that_never_starts_is_explained(kubeconfig_path: str, namespace: str, pool: Pool,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            case: str, expected: str) -> None:
    """The real scheduler's FailedScheduling (a node that does not exist) and the real
    Pod Security admission's FailedCreate (a restricted namespace)."""
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace, level="restricted" if case == "admission" else "baseline")
    # The scheduler says FailedScheduling within a second; an unschedulable pod is waited
    # for until start_timeout (a node may yet come), an admission denial ends it at once.
    extra: dict[str, Any] = {"start_timeout": 6}
    if case == "node":
        extra["node"] = "node-gone"
    code = selftest_job.run_cluster_selftest(_args(
        write_config(tmp_path, namespace, scheduling=pool.scheduling), kubeconfig_path, **extra))
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "no report: the probe's pod never started" in out and expected in out, out
    assert "fix:" in out and _leftovers(cluster, namespace) == []


def _interrupted(kubeconfig: str, config: str, seen: Callable[[], bool]) -> tuple[int, str, str]:
    """SIGINT to a running `zuul-k8s selftest --node node-gone` once seen() holds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.tools import REPO

    argv = [sys.executable, "-m", "zuul_k8s", "selftest", "-c", config,
            "--kubeconfig", kubeconfig, "--node", "node-gone", "--start-timeout", "60"]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not seen():
        time.sleep(0.1)
    assert seen(), "the self-test never got that far"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_ctrl_c_while_waiting_for_the_pod_cleans_up(kubeconfig_path: str, namespace: str,
                                                     tmp_path: Path) -> None:
    """SIGINT while the probe's pod is Pending (no node-gone exists): Jobs and ConfigMap
    are deleted."""
    cluster = Cluster.connect(kubeconfig_path)
    _namespace(cluster, namespace)
    code, out, err = _interrupted(kubeconfig_path, write_config(tmp_path, namespace), lambda: bool(
        cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]))
    assert code == 130, out + err
    assert "interrupted" in err and "cleaned up" in err and "Traceback" not in err
    assert _leftovers(cluster, namespace) == []


def test_ctrl_c_with_the_patch_in_flight_cleans_up(double: Any, double_kubeconfig: str,
                                                   namespace: str, tmp_path: Path) -> None:
    """SIGINT while the server has created the Job but not yet answered its PATCH: that
    Job is deleted too. On the double: it holds the answer after carrying the PATCH out
    (a slow server), so the Ctrl-C lands between the two."""
    cluster = Cluster.connect(double_kubeconfig)
    _namespace(cluster, namespace)
    double.slow[("patch", "jobs")] = 30.0
    code, out, err = _interrupted(double_kubeconfig, write_config(tmp_path, namespace),
                                  lambda: bool(double.list("Job", namespace)))
    assert code == 130, out + err
    assert "interrupted" in err and "cleaned up" in err and "Traceback" not in err
    assert _leftovers(cluster, namespace) == []

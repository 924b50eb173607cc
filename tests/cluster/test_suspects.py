"""Places where a review of zuul_k8s/cluster against Kubernetes' source suspected
a real cluster behaves differently from what the kit assumed (issue 11, point 5),
each settled against the real control plane and KWOK nodes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import create_namespace, run_cli, write_config
from tests.cluster.test_preflight import _secrets
from tests.k8s.controlplane import Options
from tests.k8s.fixtures import EXTERNAL, Cluster, start_cluster
from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.client import ApiError
from zuul_k8s.cluster.client import Cluster as Client
from zuul_k8s.errors import EXIT_FAILED, EXIT_USAGE
from zuul_k8s.render import namespace_labels

pytestmark = pytest.mark.cluster


def _label() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def test_user_namespaces_are_judged_by_runtime_handlers(k8s: Cluster, namespace: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The kubelet admits hostUsers: false only when the runtime handler reports
    userNamespaces (containerd 1.7 reports no handlers: the pod is refused, not silently
    run in the host's user namespace); preflight reads the same field."""
    pool = _label()
    kwok = k8s.require_kwok()
    old = kwok.add_nodes(1, "containerd-1.7", prefix=f"{pool}-old", labels={"pool": pool}, handlers=[])
    new = kwok.add_nodes(1, "containerd-2", prefix=f"{pool}-new", labels={"pool": pool})
    # A 2.x runtime version whose handler does not report the feature (e.g. a crun too old).
    odd = kwok.add_nodes(1, "containerd-2", prefix=f"{pool}-odd", labels={"pool": pool},
                         handlers=[{"name": "", "features": {"userNamespaces": False}}])
    _secrets(Client.connect(k8s.kubeconfig), namespace)
    config = write_config(tmp_path, namespace, scheduling={"nodeSelector": {"pool": pool}})
    code, out, _ = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", k8s.kubeconfig)
    assert code == EXIT_FAILED
    sections = {name: out.split(f"node {name}\n", 1)[1].split("\n\n", 1)[0] for name in old + new + odd}
    assert "the runtime reports no runtime handlers (status.runtimeHandlers is empty)" in sections[old[0]]
    assert "runtime does not support user namespaces" in sections[old[0]]
    assert "reports userNamespaces" in sections[new[0]] and "error" not in sections[new[0]]
    assert "does not report userNamespaces" in sections[odd[0]]


@pytest.fixture(scope="module")
def restricted_defaults() -> Iterator[str]:
    """A server whose admission config enforces baseline at v1.34 on unlabelled namespaces."""
    if EXTERNAL:
        pytest.skip("starts an API server of its own; ZUUL_K8S_TEST_KUBECONFIG names one cluster")
    cluster = start_cluster(Options(controllers=False, pod_security_defaults={
        "enforce": "baseline", "enforce-version": "v1.34"}), kwok=False)
    try:
        yield str(cluster.kubeconfig)
    finally:
        cluster.stop()


def test_unlabelled_namespace_gets_the_clusters_defaults(restricted_defaults: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    client = Client.connect(restricted_defaults)
    ns = f"zuul-d-{uuid.uuid4().hex[:6]}"
    create_namespace(client, ns, service_accounts=("default",))
    config = write_config(tmp_path, ns, namespace={"create": False})
    code, out, _ = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", restricted_defaults)
    assert code == EXIT_FAILED
    assert "no enforce label, so the cluster's admission defaults decide" in out
    assert re.search(r'admission +error +the server denies a dry-run executor pod: pods "zuul-k8s-preflight-'
                     r'\w+" is forbidden: violates PodSecurity "baseline:v1.34": procMount', out), out


def test_a_terminating_namespace_is_not_blamed_on_rbac(kubeconfig_path: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    client = Client.connect(kubeconfig_path)
    ns = f"zuul-t-{uuid.uuid4().hex[:6]}"
    create_namespace(client, ns)
    held = f"/api/v1/namespaces/{ns}/configmaps/held"
    client.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["zuul-k8s.test/hold"]}})
    client.request("DELETE", f"/api/v1/namespaces/{ns}")
    try:
        code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path, ns, namespace={"create": False}),
                               "--kubeconfig", kubeconfig_path, "--no-wait")
        assert code == EXIT_USAGE
        assert "because it is being terminated" in err and "the namespace is being deleted" in err
        assert "grant the kit's user" not in err
    finally:
        client.request("PATCH", held, body={"metadata": {"finalizers": None}},
                       content_type="application/merge-patch+json")


def test_a_quota_refusal_is_not_blamed_on_pod_security(kubeconfig_path: str, namespace: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    client = Client.connect(kubeconfig_path)
    create_namespace(client, namespace, namespace_labels("baseline", 35))
    client.request("POST", f"/api/v1/namespaces/{namespace}/resourcequotas", body={
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}}})
    code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path, namespace, namespace={"create": False}),
                           "--kubeconfig", kubeconfig_path, "--timeout", "30")
    assert code == EXIT_USAGE, err
    assert "a ResourceQuota refused the pod: FailedCreate" in err and "exceeded quota" in err
    assert "Pod Security" not in err.split("FailedCreate", 1)[1].split("\n", 1)[0]


def test_a_statefulset_volume_template_change_is_explained(kubeconfig_path: str, namespace: str,
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    kube = ("--kubeconfig", kubeconfig_path, "--no-wait")
    first = write_config(tmp_path, namespace, workload={"kind": "StatefulSet", "replicas": 1},
                         state={"type": "pvc", "size": "10Gi"})
    assert run_cli(capsys, "apply", "-c", first, *kube)[0] == 0
    bigger = write_config(tmp_path, namespace, "bigger.yaml", workload={"kind": "StatefulSet", "replicas": 1},
                          state={"type": "pvc", "size": "20Gi"})
    code, _, err = run_cli(capsys, "apply", "-c", bigger, *kube)
    assert code == EXIT_USAGE
    assert "volumeClaimTemplates, selector and serviceName cannot change once created" in err
    assert "--cascade=orphan" in err and "Traceback" not in err


def test_the_probe_fits_beside_a_running_executor(k8s: Cluster, namespace: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A node with room for one executor (1 CPU requested) still takes the probe: it asks
    for its own small resources, not the executor's."""
    pool = _label()
    kwok = k8s.require_kwok()
    [node] = kwok.add_nodes(1, prefix=pool, labels={"pool": pool})
    client = Client.connect(k8s.kubeconfig)
    client.request("PATCH", f"/api/v1/nodes/{node}/status", body={"status": {
        "allocatable": {"cpu": "1500m", "memory": "16Gi", "pods": "10", "ephemeral-storage": "200Gi"},
        "capacity": {"cpu": "1500m", "memory": "16Gi", "pods": "10", "ephemeral-storage": "200Gi"}}},
        content_type="application/merge-patch+json")
    _secrets(client, namespace)
    config = write_config(tmp_path, namespace, workload={"replicas": 1},
                          scheduling={"nodeSelector": {"pool": pool}})
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", k8s.kubeconfig, "--timeout", "60")
    assert code == 0, out + err
    log = tmp_path / "report.log"
    log.write_text("")
    kwok.logs(f"{pool}-logs", log, [namespace])
    code, out, err = run_cli(capsys, "selftest", "-c", config, "--kubeconfig", k8s.kubeconfig, "--node", node,
                             "--start-timeout", "20")
    assert f"runs on {node}" in err, out + err
    assert "never started" not in out


class _RefusedLogs:
    """A cluster whose kubelet refuses the log read: the one fault here the real server
    cannot be made to produce on demand (KWOK serves every container's log)."""

    server = "https://test"

    def text(self, path: str, **query: Any) -> str:
        assert query == {"container": "zuul-executor"}
        raise ApiError(400, "GET", path, query, {"message": 'container "zuul-executor" in pod "p" is '
                                                "waiting to start: CreateContainerError"})


def test_a_refused_container_is_explained_not_fatal() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n"}, "status": {"containerStatuses": [{
        "name": "zuul-executor", "state": {"terminated": {
            "exitCode": 128, "reason": "StartError",
            "message": "failed to create containerd task: seccomp profile not found"}}}]}}
    outcome = selftest_job.Outcome("job", "node")
    selftest_job.read_report(_RefusedLogs(), pod, outcome)  # type: ignore[arg-type]
    assert outcome.report is None
    assert "no log (400" in str(outcome.problem)
    assert "the container ended with exit code 128: StartError: failed to create containerd task: " \
           "seccomp profile not found" in str(outcome.problem)


def test_stderr_interleaved_with_the_report_is_left_out() -> None:
    """The kubelet's log merges the probe's stdout and stderr; its JSON is still read."""
    from tests.selftest.reports import make_report
    from zuul_k8s.selftest import report

    lines = json.dumps(make_report(), indent=2).splitlines()
    mixed = "\n".join([lines[0], "Traceback (most recent call last):", *lines[1:3],
                       "WARNING: something on stderr", *lines[3:]])
    with pytest.raises(Exception):  # noqa: B017  (the plain parse cannot read it)
        json.loads(mixed)
    assert report.parse_log(mixed, "log") == report.parse(json.dumps(make_report()), "log")


def test_a_stale_progress_deadline_does_not_end_a_new_wait(k8s: Cluster, namespace: str, tmp_path: Path) -> None:
    """A rerun once the cause is gone (here: a node for the executors now exists): the
    Deployment still says ProgressDeadlineExceeded (same generation, the controller keeps
    the condition as it is until progress), the scheduler places the pods, and the rollout
    completes; the wait must not fail on the old verdict."""
    from zuul_k8s.cluster.apply import apply_objects
    from zuul_k8s.cluster.rollout import follow
    from zuul_k8s.config import load_config
    from zuul_k8s.errors import UserError
    from zuul_k8s.render import render

    pool = _label()
    client = Client.connect(k8s.kubeconfig)
    config = write_config(tmp_path, namespace, scheduling={"nodeSelector": {"pool": pool}})
    objects = render(load_config(config))
    next(o for o in objects if o["kind"] == "Deployment")["spec"]["progressDeadlineSeconds"] = 1
    deployment = next(a.obj for a in apply_objects(client, objects) if a.obj["kind"] == "Deployment")
    with pytest.raises(UserError, match="ProgressDeadlineExceeded"):
        follow(client, deployment, lambda _: None, timeout=60)
    # The fix, and a deadline the pods can meet (a 1 s one would expire again, anew).
    client.request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/zuul-executor",
                   body={"spec": {"progressDeadlineSeconds": 600}}, content_type="application/merge-patch+json")
    k8s.require_kwok().add_nodes(1, prefix=pool, labels={"pool": pool})
    done = follow(client, deployment, lambda _: None, timeout=120)
    assert done.done

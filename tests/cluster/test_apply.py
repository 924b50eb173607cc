"""`zuul-k8s apply` against the API: server-side apply, dry run, conflicts,
refusals, and the rollout it follows."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Pool
from tests.cluster.helpers import create_namespace, deployment_path, run_cli, write_config
from zuul_k8s.cluster import access
from zuul_k8s.cluster.apply import apply_objects
from zuul_k8s.cluster.client import MERGE_PATCH, Cluster
from zuul_k8s.cluster.rollout import follow
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
from zuul_k8s.render import namespace_labels, render

pytestmark = pytest.mark.cluster
# Time for the real scheduler and controllers to say why (they do within a second or two).
EXPLAIN_TIMEOUT = "10"


def _ready_counts(out: str) -> list[int]:
    return [int(m) for m in re.findall(r"rollout: \d+/\d+ updated, (\d+)/\d+ ready", out)]


def test_apply_creates_then_is_idempotent(kubeconfig_path: str, namespace: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--no-wait")
    assert code == EXIT_OK, err
    assert f"Deployment {namespace}/zuul-executor: created" in out
    assert out.index(f"Namespace {namespace}") < out.index("ServiceAccount") < out.index(
        "Deployment") < out.index("PodDisruptionBudget")
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    assert "zuul-k8s" in managers

    code, out, _ = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--no-wait")
    assert code == EXIT_OK
    assert f"Deployment {namespace}/zuul-executor: unchanged" in out


def test_apply_follows_the_rollout_to_ready(kubeconfig_path: str, namespace: str, pool: Pool,
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """KWOK nodes make the executor pods Ready."""
    code, out, err = run_cli(capsys, "apply", "-c", write_config(
        tmp_path, namespace, scheduling=pool.scheduling), "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, err
    assert "rollout: 2/2 updated, 2/2 ready" in out and out.rstrip().endswith("rollout complete")


def test_server_dry_run_stores_nothing(kubeconfig_path: str, namespace: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--dry-run=server")
    assert code == EXIT_OK, err
    assert f"Namespace {namespace}: created (server dry run)" in out
    assert f"not checked (namespace {namespace} would be created first)" in out
    cluster = Cluster.connect(kubeconfig_path)
    assert cluster.get(f"/api/v1/namespaces/{namespace}") is None
    # Once the namespace exists, the server checks every object, and still stores none.
    run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path, "--no-wait")
    cluster.request("DELETE", deployment_path(namespace))
    code, out, _ = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--dry-run=server")
    assert code == EXIT_OK
    assert f"Deployment {namespace}/zuul-executor: created (server dry run)" in out
    assert cluster.get(deployment_path(namespace)) is None


def test_conflict_names_the_other_manager_and_force_takes_over(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    cluster = Cluster.connect(kubeconfig_path)
    path = deployment_path(namespace)
    cluster.request("PATCH", path, {"fieldManager": "kubectl-scale"},
                    {"spec": {"replicas": 3}}, MERGE_PATCH)

    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--no-wait")
    assert code == EXIT_USAGE
    assert 'field manager "kubectl-scale" owns .spec.replicas' in err
    assert "--force-conflicts" in err and "Traceback" not in err
    assert cluster.get(path)["spec"]["replicas"] == 3  # type: ignore[index]

    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--force-conflicts", "--no-wait")
    assert code == EXIT_OK, err
    deployment = cluster.get(path)
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    owners = {m["manager"]: m["fieldsV1"] for m in deployment["metadata"]["managedFields"]}
    assert "f:replicas" in owners["zuul-k8s"]["f:spec"]
    assert "f:replicas" not in owners.get("kubectl-scale", {}).get("f:spec", {})


def test_rolling_update_never_lowers_capacity(kubeconfig_path: str, namespace: str, pool: Pool,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The real Deployment controller's rolling update on KWOK nodes (instant drains)."""
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    changed = write_config(tmp_path, namespace, "changed.yaml", scheduling=pool.scheduling,
                           image="quay.io/zuul-ci/zuul-executor:12.2.0")
    code, out, err = run_cli(capsys, "apply", "-c", changed, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, err
    assert f"Deployment {namespace}/zuul-executor: configured" in out
    drained = re.findall(r"pod (\S+): draining \(graceful stop.*up to 30s", out)
    stopped = re.findall(r"pod (\S+): stopped", out)
    assert len(drained) == 2 and sorted(drained) == sorted(stopped)
    # maxSurge 1 / maxUnavailable 0: a new executor is ready before an old one drains.
    assert min(_ready_counts(out)) == 2
    first_drain = out.index("draining")
    assert re.search(r"pod \S+: ready", out[:first_drain])


def test_rollout_survives_a_compacted_watch(double: Any, double_kubeconfig: str, namespace: str,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """On the double: it answers a watch 410 Gone at a chosen moment (a real server does so
    only once etcd has compacted the watched revision)."""
    kubeconfig_path = double_kubeconfig
    config = write_config(tmp_path, namespace)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    double.expire_watches = 2  # the rollout's first two watches find their history gone
    changed = write_config(tmp_path, namespace, "changed.yaml",
                           image="quay.io/zuul-ci/zuul-executor:12.2.0")
    code, out, err = run_cli(capsys, "apply", "-c", changed, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, err
    assert double.expire_watches == 0 and out.rstrip().endswith("rollout complete")
    assert out.count(": stopped") == 2  # the relist lost no pod's life


def test_unreachable_api_names_the_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: x, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n")
    code, _, err = run_cli(capsys, "apply", "--kubeconfig", str(kubeconfig), "-c",
                           write_config(tmp_path, "zuul-test"))
    assert code == EXIT_USAGE
    assert f"http://127.0.0.1:{port}" in err and "cannot reach the Kubernetes API" in err
    assert "Traceback" not in err


def test_missing_kubeconfig_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path, "zuul-test"),
                           "--kubeconfig", str(tmp_path / "nope"))
    assert code == EXIT_USAGE and "kubeconfig not found" in err


def test_validation_failure_touches_nothing(kubeconfig_path: str, namespace: str,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Pod Security baseline does not admit an Unconfined seccomp: validation refuses first.
    config = write_config(tmp_path, namespace, isolation={"seccomp": "Unconfined"})
    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_FAILED and "refusing to touch the cluster" in err
    assert Cluster.connect(kubeconfig_path).get(f"/api/v1/namespaces/{namespace}") is None


def test_invalid_object_lists_the_rejected_fields(kubeconfig_path: str, namespace: str,
                                                  tmp_path: Path) -> None:
    """The server's 422: here procMount Unmasked without hostUsers false, which only API
    validation (not the schema) rejects."""
    objects = render(load_config(write_config(tmp_path, namespace)))
    workload = next(o for o in objects if o["kind"] == "Deployment")
    workload["spec"]["template"]["spec"]["hostUsers"] = True
    cluster = Cluster.connect(kubeconfig_path)
    with pytest.raises(UserError) as caught:
        apply_objects(cluster, objects)
    text = str(caught.value)
    assert f"Deployment {namespace}/zuul-executor" in text and "rejected the object" in text
    assert "spec.template.spec.containers[0].securityContext.procMount" in text


@pytest.mark.parametrize(("verb", "resource", "group"), [
    ("patch", "deployments", "apps"),
    # The server-side apply PATCH of a new object is authorized as create too.
    ("create", "serviceaccounts", ""),
])
def test_forbidden_names_verb_resource_and_rbac_fix(
        rbac_user: Callable[[str, list[Any]], str], kubeconfig_path: str, namespace: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str, resource: str,
        group: str) -> None:
    """Real RBAC: a Role with every rule the access table lists but one."""
    config = write_config(tmp_path, namespace)
    create_namespace(Cluster.connect(kubeconfig_path), namespace, namespace_labels("baseline", 35))
    rules = [r for r in access.required(render(load_config(config)))
             if (r.verb, r.resource) != (verb, resource)]
    code, _, err = run_cli(capsys, "apply", "-c", config,
                           "--kubeconfig", rbac_user(namespace, rules))
    assert code == EXIT_USAGE
    text = f"{resource}.{group}" if group else resource
    assert f"refuses `{verb}` on {text} in namespace {namespace}" in err, err
    assert f'apiGroups: ["{group}"], resources: ["{resource}"], verbs: ["{verb}"]' in err


def test_bad_credentials(kubeconfig_path: str, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    """The real server's 401 for a token it never issued."""
    data = yaml.safe_load(Path(kubeconfig_path).read_text())
    for user in data["users"]:
        user["user"] = {"token": "stale"}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path, "zuul-test"),
                           "--kubeconfig", str(kubeconfig))
    assert code == EXIT_USAGE and "did not accept the credentials" in err


def test_rollout_that_cannot_schedule_explains_why(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace,
                          scheduling={"nodeSelector": {"zuul.example/executor": "nowhere"}})
    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--timeout", EXPLAIN_TIMEOUT)
    assert code == EXIT_USAGE
    assert f"did not finish within {EXPLAIN_TIMEOUT}s" in err
    assert "(unschedulable)" in err and "didn't match Pod's node affinity/selector" in err


def _restricted_namespace(cluster: Cluster, namespace: str) -> None:
    create_namespace(cluster, namespace, namespace_labels("restricted", 35))


def test_pods_admission_denies_are_explained(kubeconfig_path: str, namespace: str,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """No pod exists to explain: the ReplicaSet's FailedCreate events and the Deployment's
    ReplicaFailure condition say why (restricted never admits an unmasked /proc)."""
    _restricted_namespace(Cluster.connect(kubeconfig_path), namespace)
    config = write_config(tmp_path, namespace, namespace={"create": False})
    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--timeout", EXPLAIN_TIMEOUT)
    assert code == EXIT_USAGE, err
    assert f"did not finish within {EXPLAIN_TIMEOUT}s" in err
    assert "Pod Security admission denied the pod: FailedCreate" in err
    assert 'violates PodSecurity "restricted:' in err and "procMount" in err
    assert "Traceback" not in err


def test_progress_deadline_ends_the_wait(kubeconfig_path: str, namespace: str,
                                         tmp_path: Path) -> None:
    """The controller gives up after progressDeadlineSeconds (Progressing False,
    ProgressDeadlineExceeded): so does the wait, long before its own timeout."""
    cluster = Cluster.connect(kubeconfig_path)
    _restricted_namespace(cluster, namespace)
    objects = render(load_config(write_config(
        tmp_path, namespace, namespace={"create": False})))
    workload = next(o for o in objects if o["kind"] == "Deployment")
    workload["spec"]["progressDeadlineSeconds"] = 1
    applied = apply_objects(cluster, objects)
    deployment = next(a.obj for a in applied if a.obj["kind"] == "Deployment")
    with pytest.raises(UserError) as caught:
        follow(cluster, deployment, lambda _: None, timeout=120)
    text = str(caught.value)
    assert "the rollout stopped: ProgressDeadlineExceeded after 1s without progress" in text
    assert "Pod Security admission denied the pod" in text

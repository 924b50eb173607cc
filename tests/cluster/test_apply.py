"""`zuul-k8s apply` against the API: server-side apply, dry run, conflicts,
refusals, and the rollout it follows."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.cluster.helpers import run_cli, write_config
from zuul_k8s.cluster.apply import apply_objects
from zuul_k8s.cluster.client import MERGE_PATCH, Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
from zuul_k8s.render import render

pytestmark = pytest.mark.cluster
DEPLOYMENT = "/apis/apps/v1/namespaces/zuul-test/deployments/zuul-executor"


def _ready_counts(out: str) -> list[int]:
    return [int(m) for m in re.findall(r"rollout: \d+/\d+ updated, (\d+)/\d+ ready", out)]


def test_apply_creates_then_is_idempotent(kubeconfig_path: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, err
    assert "Deployment zuul-test/zuul-executor: created" in out
    assert out.index("Namespace zuul-test") < out.index("ServiceAccount") < out.index(
        "Deployment") < out.index("PodDisruptionBudget")
    assert "rollout: 2/2 updated, 2/2 ready" in out and out.rstrip().endswith("rollout complete")
    deployment = Cluster.connect(kubeconfig_path).get(DEPLOYMENT)
    assert deployment is not None
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    assert "zuul-k8s" in managers

    code, out, _ = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK
    assert "Deployment zuul-test/zuul-executor: unchanged" in out


def test_server_dry_run_stores_nothing(kubeconfig_path: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--dry-run=server")
    assert code == EXIT_OK, err
    assert "Namespace zuul-test: created (server dry run)" in out
    assert "not checked (namespace zuul-test would be created first)" in out
    cluster = Cluster.connect(kubeconfig_path)
    assert cluster.get("/api/v1/namespaces/zuul-test") is None
    # Once the namespace exists, the server checks every object, and still stores none.
    run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path, "--no-wait")
    cluster.request("DELETE", DEPLOYMENT)
    code, out, _ = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--dry-run=server")
    assert code == EXIT_OK
    assert "Deployment zuul-test/zuul-executor: created (server dry run)" in out
    assert cluster.get(DEPLOYMENT) is None


def test_conflict_names_the_other_manager_and_force_takes_over(
        kubeconfig_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    cluster = Cluster.connect(kubeconfig_path)
    cluster.request("PATCH", DEPLOYMENT, {"fieldManager": "kubectl-scale"},
                    {"spec": {"replicas": 3}}, MERGE_PATCH)

    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_USAGE
    assert 'field manager "kubectl-scale" owns .spec.replicas' in err
    assert "--force-conflicts" in err and "Traceback" not in err
    assert cluster.get(DEPLOYMENT)["spec"]["replicas"] == 3  # type: ignore[index]

    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--force-conflicts")
    assert code == EXIT_OK, err
    deployment = cluster.get(DEPLOYMENT)
    assert deployment is not None and deployment["spec"]["replicas"] == 2
    owners = {m["manager"]: m["fieldsV1"] for m in deployment["metadata"]["managedFields"]}
    assert "f:replicas" in owners["zuul-k8s"]["f:spec"]
    assert "f:replicas" not in owners.get("kubectl-scale", {}).get("f:spec", {})


def test_rolling_update_never_lowers_capacity(kubeconfig_path: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    changed = write_config(tmp_path, "changed.yaml", image="quay.io/zuul-ci/zuul-executor:12.2.0")
    code, out, err = run_cli(capsys, "apply", "-c", changed, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, err
    assert "Deployment zuul-test/zuul-executor: configured" in out
    drained = re.findall(r"pod (\S+): draining \(graceful stop.*up to 30s\)", out)
    stopped = re.findall(r"pod (\S+): stopped", out)
    assert len(drained) == 2 and sorted(drained) == sorted(stopped)
    # maxSurge 1 / maxUnavailable 0: a new executor is ready before an old one drains.
    assert min(_ready_counts(out)) == 2
    first_drain = out.index("draining")
    assert re.search(r"pod \S+: ready", out[:first_drain])


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
                           write_config(tmp_path))
    assert code == EXIT_USAGE
    assert f"http://127.0.0.1:{port}" in err and "cannot reach the Kubernetes API" in err
    assert "Traceback" not in err


def test_missing_kubeconfig_is_a_usage_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "apply", "--kubeconfig", str(tmp_path / "nope"))
    assert code == EXIT_USAGE and "kubeconfig not found" in err


def test_validation_failure_touches_nothing(kubeconfig_path: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Kubernetes 1.30 cannot run the executor unprivileged: validation refuses first.
    config = write_config(tmp_path, kubernetes={"version": "1.30"})
    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_FAILED and "refusing to touch the cluster" in err
    assert Cluster.connect(kubeconfig_path).get("/api/v1/namespaces/zuul-test") is None


def test_invalid_object_lists_the_rejected_fields(kubeconfig_path: str, tmp_path: Path) -> None:
    """The server's 422: here procMount Unmasked without hostUsers false, which only API
    validation (not the schema) rejects."""
    objects = render(load_config(write_config(tmp_path)))
    workload = next(o for o in objects if o["kind"] == "Deployment")
    workload["spec"]["template"]["spec"]["hostUsers"] = True
    cluster = Cluster.connect(kubeconfig_path)
    with pytest.raises(UserError) as caught:
        apply_objects(cluster, objects)
    text = str(caught.value)
    assert "Deployment zuul-test/zuul-executor" in text and "rejected the object" in text
    assert "spec.template.spec.containers[0].securityContext.procMount" in text


def test_forbidden_names_verb_resource_and_rbac_fix(double: object, kubeconfig_path: str,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    double.forbidden.add(("patch", "deployments"))  # type: ignore[attr-defined]
    code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path), "--kubeconfig",
                           kubeconfig_path)
    assert code == EXIT_USAGE
    assert "refuses `patch` on deployments.apps in namespace zuul-test" in err
    assert 'apiGroups: ["apps"], resources: ["deployments"], verbs: ["patch"]' in err


def test_bad_credentials(double: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(double.kubeconfig(double.url, token="stale"))  # type: ignore[attr-defined]
    code, _, err = run_cli(capsys, "apply", "-c", write_config(tmp_path), "--kubeconfig",
                           str(kubeconfig))
    assert code == EXIT_USAGE and "did not accept the credentials" in err


def test_rollout_that_cannot_schedule_explains_why(
        double: object, kubeconfig_path: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, scheduling={"nodeSelector": {"zuul.example/executor": "yes"}})
    code, _, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                           "--timeout", "2")
    assert code == EXIT_USAGE
    assert "did not finish within 2s" in err
    assert "(unschedulable)" in err and "didn't match Pod's node affinity/selector" in err

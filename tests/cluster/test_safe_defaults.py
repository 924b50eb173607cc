"""Safe by default: `apply`/`upgrade` need -c, a missing --zuul-conf keeps the checksum the
cluster has, a namespace holding someone else's pods and objects is not taken over without
--force, and old executors still draining are not a failed rollout."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import create_namespace, deployment_path, run_cli, write_config
from tests.k8s.kwok import DELETE_DELAY
from tests.tools import REPO
from tests.zuulconf.helpers import fitting
from zuul_k8s.cluster import rollout, takeover
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.cluster.rollout import Deadline, Progress, default_timeout, drain_of, settled
from zuul_k8s.cluster.upgrade import STATE_ANNOTATION
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_OK, EXIT_USAGE
from zuul_k8s.render import CHECKSUM_ANNOTATION, render

pytestmark = pytest.mark.cluster
NEW_IMAGE = "quay.io/zuul-ci/zuul-executor:12.2.0"
OLD_IMAGE = "quay.io/zuul-ci/zuul-executor:12.1.0"


# --- apply and upgrade need -c ---------------------------------------------------------------

@pytest.mark.parametrize("argv", [("apply",), ("apply", "--dry-run=server"),
                                  ("upgrade", "--image", NEW_IMAGE)])
def test_without_config_they_refuse_and_touch_nothing(
        argv: tuple[str, ...], kubeconfig_path: str, namespace: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    before = cluster.get("/api/v1/namespaces/zuul")  # the built-in example's namespace
    code, out, err = run_cli(capsys, *argv, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_USAGE, out + err
    assert f"`zuul-k8s {argv[0]}` needs your config: pass -c CONFIG" in err
    assert "built-in example" in err and out == "" and "Traceback" not in err
    after = cluster.get("/api/v1/namespaces/zuul")
    assert (before is None) is (after is None)
    if after is not None and before is not None:
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_render_and_validate_still_use_the_example() -> None:
    for argv in (("render",), ("validate",)):
        run = subprocess.run([sys.executable, "-m", "zuul_k8s", *argv], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == EXIT_OK, run.stderr


# --- a missing --zuul-conf keeps the cluster's checksum --------------------------------------

def test_missing_zuul_conf_keeps_the_checksum_and_says_so(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    zuul_conf = tmp_path / "zuul.conf"
    objects = render(load_config(config))
    zuul_conf.write_text(fitting(objects))
    kube = ("--kubeconfig", kubeconfig_path, "--no-wait")
    code, _, err = run_cli(capsys, "apply", "-c", config, "--zuul-conf", str(zuul_conf), *kube)
    assert code == EXIT_OK, err
    cluster = Cluster.connect(kubeconfig_path)
    before = cluster.get(deployment_path(namespace))
    assert before is not None
    checksum = before["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]

    code, out, err = run_cli(capsys, "apply", "-c", config, *kube)
    assert code == EXIT_OK, err
    assert ("no --zuul-conf given: keeping the zuul.conf checksum the cluster has "
            f"({CHECKSUM_ANNOTATION}={checksum[:12]}...)") in out
    assert f"Deployment {namespace}/zuul-executor: unchanged" in out
    after = cluster.get(deployment_path(namespace))
    assert after is not None and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]

    # A new zuul.conf still rolls the executors: the kept value never hides a real change.
    zuul_conf.write_text(fitting(objects, password="another-keystore-password"))
    code, out, _ = run_cli(capsys, "apply", "-c", config, "--zuul-conf", str(zuul_conf), *kube)
    assert code == EXIT_OK and f"Deployment {namespace}/zuul-executor: configured" in out
    assert "keeping the zuul.conf checksum" not in out


# --- taking over a namespace -------------------------------------------------------------------

PRIVILEGED_EXECUTOR: dict[str, Any] = {
    "containers": [{"name": "executor", "image": "quay.io/zuul-ci/zuul-executor:latest",
                    "securityContext": {"privileged": True}}]}


def _operator_namespace(cluster: Cluster, namespace: str) -> None:
    """A namespace as the Zuul operator leaves it: enforcing nothing, its StatefulSet
    zuul-executor with its privileged pod zuul-executor-0 (made by the StatefulSet
    controller), and its headless Service zuul-executor (by another field manager)."""
    create_namespace(cluster, namespace, {"pod-security.kubernetes.io/enforce": "privileged"})
    labels = {"app.kubernetes.io/name": "zuul", "app.kubernetes.io/component": "zuul-executor"}
    manager = {"fieldManager": "zuul-operator"}
    cluster.request("POST", f"/apis/apps/v1/namespaces/{namespace}/statefulsets", manager, {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "zuul-executor", "labels": labels},
        "spec": {"serviceName": "zuul-executor", "replicas": 1,
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": PRIVILEGED_EXECUTOR}}})
    cluster.request("POST", f"/api/v1/namespaces/{namespace}/services", manager, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "zuul-executor"},
        "spec": {"clusterIP": "None", "selector": labels,
                 "ports": [{"name": "logs", "port": 7900}]}})
    deadline = time.monotonic() + 60
    while cluster.get(f"/api/v1/namespaces/{namespace}/pods/zuul-executor-0") is None:
        assert time.monotonic() < deadline, "the StatefulSet controller made no pod"
        time.sleep(0.2)


def test_preflight_lists_denied_pods_and_contested_objects(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _operator_namespace(Cluster.connect(kubeconfig_path), namespace)
    code, out, err = run_cli(capsys, "preflight", "-c", write_config(tmp_path, namespace),
                             "--kubeconfig", kubeconfig_path)
    assert "Traceback" not in err
    rows = [line for line in out.splitlines() if line.strip().startswith("takeover")]
    assert any(f"Pod {namespace}/zuul-executor-0: baseline:v1.35 would deny it (privileged "
               '(container "executor" must not set securityContext.privileged=true)); owned by '
               "StatefulSet/zuul-executor (apps/v1)" in r for r in rows), out
    assert any(f"StatefulSet {namespace}/zuul-executor: named like the executor StatefulSet "
               "of the Zuul operator or sf-operator or a Zuul Helm chart (field managers: "
               in r and "zuul-operator" in r for r in rows), out
    assert any(f"Service {namespace}/zuul-executor: exists and zuul-k8s does not manage it "
               "(field managers: zuul-operator)" in r for r in rows), out
    assert all(" error " in r for r in rows)
    assert "apply --force" in out and code == 1 and "verdict: BLOCKED" in out


def test_apply_refuses_to_take_over_without_force(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Cluster.connect(kubeconfig_path)
    _operator_namespace(cluster, namespace)
    config = write_config(tmp_path, namespace)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--no-wait")
    assert code == EXIT_USAGE, out + err
    assert f"namespace {namespace}: refusing to take it over: it holds 1 pod(s) the Pod " \
        "Security level it would set (baseline) denies and 2 object(s) the kit would fight " \
        "over" in err
    assert "rerun with --force" in err and f"Pod {namespace}/zuul-executor-0" in err
    live = cluster.get(f"/api/v1/namespaces/{namespace}")
    assert live is not None
    assert live["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert cluster.get(deployment_path(namespace)) is None and out == ""

    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--no-wait", "--force", "--force-conflicts")
    assert code == EXIT_OK, out + err
    assert f"warning: namespace {namespace}: objects the kit would fight over:" in err
    assert f"Namespace {namespace}: configured" in out
    live = cluster.get(f"/api/v1/namespaces/{namespace}")
    assert live is not None
    assert live["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"

    # Taken over: the namespace has the kit's labels, the Service is the kit's. The other
    # deployer's StatefulSet is still there (migrating side by side): reported, not refused.
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                             "--no-wait")
    assert code == EXIT_OK, out + err
    assert (f"warning:   StatefulSet {namespace}/zuul-executor: named like the executor "
            "StatefulSet of the Zuul operator") in err
    assert "Pod " not in err and "refusing" not in err


def test_the_kits_own_namespace_is_no_takeover(
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    kube = ("--kubeconfig", kubeconfig_path, "--no-wait")
    assert run_cli(capsys, "apply", "-c", config, *kube)[0] == EXIT_OK
    code, out, err = run_cli(capsys, "apply", "-c", config, *kube)
    assert code == EXIT_OK and "refusing" not in err and "warning" not in err, err
    assert f"Deployment {namespace}/zuul-executor: unchanged" in out


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "zuul", **extra}


def test_takeover_judgement() -> None:
    """Pure: what counts as someone else's, and what the kit's own objects are."""
    objects = render(load_config(None))
    kit = {"managedFields": [{"manager": "zuul-k8s"}]}
    live = {("Service", "zuul-executor"): {"kind": "Service", "metadata": _meta(
        "zuul-executor", managedFields=[{"manager": "helm"}],
        annotations={"meta.helm.sh/release-name": "ci"})}}
    listed = [
        {"kind": "StatefulSet", "metadata": _meta("ci-zuul-executor")},
        {"kind": "Service", "metadata": _meta("zuul-executor-headless")},
        {"kind": "Deployment", "metadata": _meta("zuul-executor", **kit)},  # the kit's own
        {"kind": "Deployment", "metadata": _meta("nodepool-launcher")},
    ]
    secrets = [
        {"kind": "Secret", "metadata": _meta("zuul-config", ownerReferences=[
            {"kind": "Zuul", "name": "zuul", "apiVersion": "operator.zuul-ci.org/v1alpha2"}])},
        {"kind": "Secret", "metadata": _meta("zuul-ssh-key",
                                             managedFields=[{"manager": "kubectl-create"}])},
    ]
    privileged = {"metadata": _meta("old-0"), "spec": PRIVILEGED_EXECUTOR}
    finished = {**privileged, "metadata": _meta("old-1"), "status": {"phase": "Succeeded"}}
    plain = {"metadata": _meta("web-0"), "spec": {"containers": [{"name": "c", "image": "x"}]}}
    result = takeover.judge({"metadata": {"name": "zuul"}}, objects, [privileged, finished, plain],
                            live, listed, secrets)
    assert [f.what for f in result.denied_pods] == ["Pod zuul/old-0"]
    lines = {f.what: f.why for f in result.contested}
    assert lines["Service zuul/zuul-executor"].startswith(
        "exists and zuul-k8s does not manage it (Helm release ci)")
    assert lines["StatefulSet zuul/ci-zuul-executor"].startswith(
        "named like the executor StatefulSet of a Zuul Helm chart")
    assert lines["Service zuul/zuul-executor-headless"].startswith(
        "named like the executor Service of sf-operator")
    assert "owned by Zuul/zuul (operator.zuul-ci.org/v1alpha2)" in lines["Secret zuul/zuul-config"]
    assert "Secret zuul/zuul-ssh-key" not in lines  # made by a person: the kit reads it, fine
    assert "Deployment zuul/zuul-executor" not in lines and len(lines) == 4
    assert result.relabels and result.blocks
    # No namespace yet, or the kit does not label it: nothing to deny.
    assert takeover.judge(None, objects, [privileged], live, listed, secrets).findings == []
    # The namespace already has the kit's labels: nothing is relabelled, the pods are not
    # judged, and a peer's leftovers are reported without blocking (side by side).
    labelled = {"metadata": {"name": "zuul", "labels": next(
        o for o in objects if o["kind"] == "Namespace")["metadata"]["labels"]}}
    settled_in = takeover.judge(labelled, objects, [privileged], {}, listed, [])
    assert not settled_in.relabels and settled_in.denied_pods == []
    assert [f.what for f in settled_in.lookalikes] == ["StatefulSet zuul/ci-zuul-executor",
                                                      "Service zuul/zuul-executor-headless"]
    assert not settled_in.blocks
    # An object with the kit's own name that it does not manage blocks in any case.
    assert takeover.judge(labelled, objects, [], live, [], []).blocks
    unlabelled = [o for o in objects if o["kind"] != "Namespace"]
    assert takeover.judge({"metadata": {"name": "zuul"}}, unlabelled, [privileged], {}, [],
                          []).findings == []


# --- old executors draining are not a failed rollout ----------------------------------------

def test_default_timeout_follows_the_grace_period() -> None:
    config = load_config(None)  # 2 replicas, gracefulStopSeconds 10800
    planned = next(o for o in render(config) if o["kind"] == "Deployment")
    assert default_timeout(planned, None) == 2 * (10800 + 300) + 300
    assert default_timeout(planned, None, rolls=2) == 2 * 2 * (10800 + 300) + 300
    live = {"spec": {"replicas": 3, "template": {"spec": {"terminationGracePeriodSeconds": 30}}}}
    assert default_timeout(planned, live) == 3 * (10800 + 300) + 300  # more pods to replace
    short = {"spec": {"replicas": 1, "template": {"spec": {"terminationGracePeriodSeconds": 60}}}}
    assert default_timeout(short, None) == 1 * (60 + 300) + 300


def test_deadline_shares_and_passes() -> None:
    total = Deadline.after(10)
    half = total.share(2)
    assert 4.5 < half.remaining() <= 5 and half.seconds == pytest.approx(5, abs=0.1)
    assert not total.passed and Deadline.after(-1).passed


def _pod(name: str, *, deleting: str | None = None, is_ready: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta |= {"deletionTimestamp": deleting, "deletionGracePeriodSeconds": 10800}
    return {"metadata": meta, "spec": {"terminationGracePeriodSeconds": 10800},
            "status": {"conditions": [{"type": "Ready", "status": str(is_ready)}]}}


def test_a_drain_is_dated_from_the_server() -> None:
    drain = drain_of(_pod("old", deleting="2026-01-01T15:00:00Z"))
    assert drain.since == datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
    now = datetime.datetime(2026, 1, 1, 12, 42, 5, tzinfo=datetime.UTC)
    assert drain.text(now) == ("old since 12:00:00Z (42m05s of up to 3h00m; killed at the "
                               "latest at 15:00:00Z)")


def test_a_status_from_before_the_new_spec_is_not_shown_as_progress() -> None:
    """Right after a PATCH the real server's status still counts the old spec's pods
    ("1/1 updated, 1/1 ready", seen when `user.uid: 0` was applied on the real node)."""
    workload = {"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 1},
                "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}}
    assert rollout.progress(workload).line() == "rollout: waiting for the controller to take up the new spec"
    workload["status"]["observedGeneration"] = 3
    assert rollout.progress(workload).line() == "rollout: 1/1 updated, 1/1 ready"


def test_settled_means_only_drains_remain() -> None:
    done = Progress(desired=2, updated=2, ready=2, total=2, observed=True)
    drains = {"new-a": _pod("new-a"), "new-b": _pod("new-b"),
              "old-a": _pod("old-a", deleting="2026-01-01T15:00:00Z")}
    assert settled(done, drains) and done.complete
    # A StatefulSet replaces a pod only once it is gone: one new, one draining.
    sts = Progress(desired=2, updated=1, ready=1, total=1, observed=True)
    assert settled(sts, {"x-0": _pod("x-0"), "x-1": _pod("x-1", deleting="2026-01-01T15:00:00Z")})
    assert not sts.complete
    # A new pod that is not ready is a stuck rollout, drains or not.
    assert not settled(done, {**drains, "new-b": _pod("new-b", is_ready=False)})
    assert not settled(done, {"new-a": _pod("new-a"), "new-b": _pod("new-b")})  # no drain
    assert not settled(replace_observed(done), drains)


def replace_observed(state: Progress) -> Progress:
    return Progress(state.desired, state.updated, state.ready, state.total, observed=False)


def _draining_config(tmp_path: Path, namespace: str, pool: Any, seconds: int,
                     name: str = "config.yaml", **overrides: Any) -> str:
    """A config whose executor pods linger `seconds` after their delete (KWOK's delete
    delay, tests/k8s/kwok.py: an executor still finishing its builds)."""
    return write_config(tmp_path, namespace, name, scheduling=pool.scheduling,
                        podAnnotations={DELETE_DELAY: f"{seconds}s"}, **overrides)


def test_apply_succeeds_while_old_executors_drain(
        pool: Any, kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = _draining_config(tmp_path, namespace, pool, 40)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    changed = _draining_config(tmp_path, namespace, pool, 40, "changed.yaml", image=NEW_IMAGE)
    began = time.monotonic()
    code, out, err = run_cli(capsys, "apply", "-c", changed, "--kubeconfig", kubeconfig_path,
                             "--timeout", "15")
    took = time.monotonic() - began
    assert code == EXIT_OK, out + err
    assert "waiting up to 15s for the rollout (--timeout)" in out
    assert re.search(r"rollout complete: every executor runs the new template and is ready; "
                     r"2 old executor\(s\) still finishing their builds stop by themselves: "
                     r"zuul-executor-\S+ since \d\d:\d\d:\d\dZ \(\d+s of up to 30s", out), out
    assert took < 30, f"--timeout 15 took {took:.0f}s"  # total wall time, not per request


def test_the_default_wait_is_stated(pool: Any, kubeconfig_path: str, namespace: str,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By default apply waits what gracefulStopSeconds (30 here) and the replicas (2) call
    for, says so, and a rollout without old executors ends as soon as the new are ready."""
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, out + err
    assert (f"waiting up to {2 * (30 + 300) + 300}s for the rollout (replicas x "
            "(gracefulStopSeconds + 300) + 300; --timeout to change)") in out
    assert out.rstrip().endswith("rollout complete")


def test_follow_lists_the_draining_pods_with_their_start(
        pool: Any, kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from zuul_k8s.cluster.apply import apply_objects

    config = _draining_config(tmp_path, namespace, pool, 40)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    cluster = Cluster.connect(kubeconfig_path)
    objects = render(load_config(_draining_config(tmp_path, namespace, pool, 40, "c.yaml",
                                                  image=NEW_IMAGE)))
    applied = apply_objects(cluster, objects)
    workload = next(a.obj for a in applied if a.obj["kind"] == "Deployment")
    lines: list[str] = []
    state = rollout.follow(cluster, workload, lines.append, timeout=15, report_every=1)
    assert state.complete and len(state.draining) == 2, lines
    reports = [line for line in lines if line.startswith("draining: ")]
    assert reports, lines
    assert re.fullmatch(r"draining: \d old executor\(s\) finishing their builds: "
                        r"zuul-executor-\S+ since \d\d:\d\d:\d\dZ \(\d+s of up to 30s; killed at "
                        r"the latest at \d\d:\d\d:\d\dZ\).*", reports[-1]), reports


def test_a_healthy_upgrade_is_not_rolled_back_while_old_executors_drain(
        pool: Any, kubeconfig_path: str, namespace: str, tmp_path: Path,
        serve_report: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The new executors are ready; the old ones still finish their builds (40 s here, hours
    in production) when --timeout ends: that is no failure and no reason to roll back."""
    config = _draining_config(tmp_path, namespace, pool, 40, image=OLD_IMAGE)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    serve_report("pass")
    code, out, err = run_cli(capsys, "upgrade", "--image", NEW_IMAGE, "-c", config,
                             "--kubeconfig", kubeconfig_path, "--timeout", "30",
                             "--rollback-on-failure")
    assert code == EXIT_OK, out + err
    assert "waiting up to 30s for the rollouts (2 rolls: this one gets half" in out
    assert "rollout complete: every executor runs the new template and is ready; 2 old " \
        "executor(s) still finishing their builds stop by themselves" in out
    assert "rolling back" not in out and "after the upgrade: self-test" in out
    assert f"upgraded: the executors run {NEW_IMAGE}" in out
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == NEW_IMAGE
    assert json.loads(deployment["metadata"]["annotations"][STATE_ANNOTATION])["phase"] == "done"

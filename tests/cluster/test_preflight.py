"""`zuul-k8s preflight`: the judgement over API dicts, and the command against the real
control plane: nodes are KWOK nodes with the status each case needs, denied
permissions real RBAC."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Pool
from tests.cluster.helpers import create_namespace, run_cli, write_config
from tests.kubeapi.controller import node
from zuul_k8s.cluster import access, preflight, selftest_job
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK
from zuul_k8s.findings import Severity
from zuul_k8s.render import namespace_labels, render

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize(("runtime", "blocks"), [
    ("containerd://2.0.2", False), ("containerd://1.7.22", True), ("cri-o://1.25.0", False),
    ("cri-o://1.24.9", True), ("docker://27.1.0", True), ("containerd://2.1.0-rc.1", False),
])
def test_runtime_minimums(runtime: str, blocks: bool) -> None:
    check = preflight.runtime_check("node n", {"containerRuntimeVersion": runtime})
    assert check.blocks is blocks
    if blocks:
        assert "containerd 2.0+ or cri-o 1.25+" in check.fix


@pytest.mark.parametrize(("kernel", "blocks"), [
    ("6.3.0", False), ("6.8.0-45-generic", False), ("6.2.16", True), ("5.15.0-1060-azure", True),
])
def test_kernel_gate(kernel: str, blocks: bool) -> None:
    assert preflight.kernel_check("node n", {"kernelVersion": kernel}).blocks is blocks


@pytest.mark.parametrize(("minor", "severity"), [
    ("35", None), ("33", None), ("32", Severity.WARNING), ("30", Severity.ERROR), ("28+", Severity.ERROR),
])
def test_api_version_uses_the_isolation_gates(minor: str, severity: Severity | None) -> None:
    assert preflight.api_version_check({"minor": minor, "gitVersion": f"v1.{minor}"}).severity \
        is severity


def test_eligibility_honours_selector_taints_and_affinity() -> None:
    tainted = node("t", taints=[{"key": "zuul", "value": "exec", "effect": "NoSchedule"}],
                   labels={"pool": "zuul"})
    assert preflight.eligibility(tainted, {}) is not None
    assert "taint zuul=exec:NoSchedule" in str(preflight.eligibility(tainted, {}))
    toleration = {"tolerations": [{"key": "zuul", "operator": "Equal", "value": "exec",
                                   "effect": "NoSchedule"}]}
    assert preflight.eligibility(tainted, toleration) is None
    assert "nodeSelector pool=zuul" in str(preflight.eligibility(node("u"), {"nodeSelector": {"pool": "zuul"}}))
    affinity = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                "values": ["u"]}]}]}}}}
    assert preflight.eligibility(node("u"), affinity) is None
    assert preflight.eligibility(node("v"), affinity) == "required node affinity does not match"


def _template() -> dict[str, Any]:
    from zuul_k8s.render import pod_template
    return pod_template(load_config(None), None)


def test_namespace_labels_judged_by_pod_security() -> None:
    ok = {"metadata": {"labels": namespace_labels("baseline", 35)}}
    assert not preflight.namespace_check(ok, "zuul", False, _template()).blocks
    old = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline",
                                   "pod-security.kubernetes.io/enforce-version": "v1.34"}}}
    check = preflight.namespace_check(old, "zuul", False, _template())
    assert check.blocks and "procMount" in check.detail and "enforce-version=v1.35" in check.fix
    assert preflight.namespace_check(None, "zuul", False, _template()).blocks
    assert not preflight.namespace_check(None, "zuul", True, _template()).blocks


def test_secret_keys_named_never_values() -> None:
    secrets = load_config(None)["secrets"]
    found = {
        "zuul-config": {"data": {"zuul.conf": base64.b64encode(b"s3cret-value").decode()}},
        "zuul-ssh-key": None,
        "zookeeper-client-tls": {"data": {"ca.crt": "eA==", "tls.crt": "eA=="}},
    }
    checks = {c.scope: c for c in preflight.secret_checks(secrets, found, "zuul")}
    assert not checks["secret zuul-config"].blocks
    assert checks["secret zuul-ssh-key"].blocks and "--from-file=id_rsa=" in checks["secret zuul-ssh-key"].fix
    assert "lacks key(s) tls.key" in checks["secret zookeeper-client-tls"].detail
    assert all("s3cret" not in c.detail and "czNjcmV0" not in c.detail for c in checks.values())


def _secrets(cluster: Cluster, namespace: str) -> None:
    create_namespace(cluster, namespace, namespace_labels("baseline", 35))
    for name, keys in (("zuul-config", ["zuul.conf"]), ("zuul-ssh-key", ["id_rsa"]),
                       ("zookeeper-client-tls", ["ca.crt", "tls.crt", "tls.key"])):
        cluster.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(b"top-secret-material").decode() for k in keys}})


def test_preflight_ready_cluster(kubeconfig_path: str, namespace: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Runs on any cluster: what it asserts comes from what the API itself answers."""
    cluster = Cluster.connect(kubeconfig_path)
    _secrets(cluster, namespace)
    code, out, err = run_cli(capsys, "preflight", "-c", write_config(tmp_path, namespace),
                             "--kubeconfig", kubeconfig_path)
    assert "Traceback" not in err
    errors = re.findall(r"^  \S.* +error +", out, re.M)
    assert ("verdict: READY" in out) is (not errors and code == EXIT_OK), out + err
    for item in cluster.request("GET", "/api/v1/nodes")["items"]:
        name = item["metadata"]["name"]
        runtime = item["status"]["nodeInfo"]["containerRuntimeVersion"]
        assert (f"node {name}\n" in out and runtime in out) or f"node {name}: not eligible" in out
    for role, secret in (("zuulConf", "zuul-config"), ("sshKey", "zuul-ssh-key"),
                         ("zookeeperTls", "zookeeper-client-tls")):
        assert re.search(rf"secret {secret}\n  {role} +ok +has ", out), out
    assert "admits the executor" in out
    for rule in access.required(render(load_config(write_config(tmp_path, namespace)))):
        assert re.search(rf"^  {re.escape(rule.text)} +(ok|error) ", out, re.M), rule.text
    assert "top-secret" not in out and "dG9wLXNlY3JldC" not in out


def test_preflight_ready_on_good_nodes(kubeconfig_path: str, namespace: str, pool: Pool,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _secrets(Cluster.connect(kubeconfig_path), namespace)
    code, out, err = run_cli(capsys, "preflight", "-c", write_config(
        tmp_path, namespace, scheduling=pool.scheduling), "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, out + err
    assert "verdict: READY: 0 blocking, 0 warning(s), 2 eligible node(s)" in out
    assert "patch deployments.apps" in out and "get pods/log" in out


def _denied(rbac_user: Callable[[str, list[Any]], str], namespace: str, config: str,
            *denied: tuple[str, str]) -> str:
    """A user whom RBAC grants every rule the config needs but the denied (verb, resource)."""
    rules = access.required(render(load_config(config)))
    kept = [r for r in rules if (r.verb, r.resource) not in denied]
    assert len(kept) == len(rules) - len(denied), denied
    return rbac_user(namespace, kept)


def test_preflight_blocks_on_old_node_missing_secret_and_denied_access(
        own_nodes: Callable[..., Pool], rbac_user: Callable[[str, list[Any]], str],
        kubeconfig_path: str, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Old nodes are KWOK nodes reporting Linux 5.15 and containerd 1.7; the denied
    permission is real RBAC (a Role without `patch jobs`)."""
    pool = own_nodes(1, "kernel-5.15", name="old-kernel")
    pool = own_nodes(1, "containerd-1.7", name="old-runtime", pool=pool)
    pool = own_nodes(1, name="gpu", pool=pool, spec={"taints": [{"key": "gpu",
                                                                 "effect": "NoSchedule"}]})
    cluster = Cluster.connect(kubeconfig_path)
    _secrets(cluster, namespace)
    cluster.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/zuul-ssh-key")
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    user = _denied(rbac_user, namespace, config, ("patch", "jobs"))
    code, out, _ = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", user)
    assert code == EXIT_FAILED
    assert "verdict: BLOCKED" in out
    assert "5.15.0-140-generic: hostUsers: false needs Linux 6.3+" in out, out
    assert "containerd before 2.0 ignores hostUsers: false" in out
    gpu = pool.names[-1]
    assert f"node {gpu}: not eligible for the executor (taint gpu=:NoSchedule not tolerated)" in out
    assert f"missing in namespace {namespace}" in out
    assert re.search(rf"patch jobs\.batch +error +denied in {namespace}; needed by selftest", out)


def _all_rules() -> list[Any]:
    """Every rule the kit may need: for a Deployment config and a StatefulSet one."""
    rules: dict[str, Any] = {}
    for kind in ("Deployment", "StatefulSet"):
        config = load_config(None)
        data = {**config.data, "workload": {**config.data["workload"], "kind": kind}}
        for rule in access.required(render(type(config)(config.source, data))):
            rules.setdefault(rule.text, (kind, rule))
    return list(rules.values())


@pytest.mark.parametrize(("kind", "rule"), _all_rules(), ids=lambda v: getattr(v, "text", v))
def test_each_required_permission_blocks(rbac_user: Callable[[str, list[Any]], str],
                                         kubeconfig_path: str, namespace: str, pool: Pool,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         kind: str, rule: Any) -> None:
    """A user whom real RBAC grants every rule but this one."""
    _secrets(Cluster.connect(kubeconfig_path), namespace)
    config = write_config(tmp_path, namespace, workload={"kind": kind, "replicas": 2},
                          scheduling=pool.scheduling)
    user = _denied(rbac_user, namespace, config, (rule.verb, rule.resource))
    code, out, err = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", user)
    assert code == EXIT_FAILED, out + err
    where = f"in {namespace}" if rule.namespaced else r"\(cluster-wide\)"
    assert re.search(rf"^  {re.escape(rule.text)} +error +denied {where}; needed by ", out,
                     re.M), out
    assert re.search(r"verdict: BLOCKED: \d+ blocking", out)
    assert "Traceback" not in err


def test_cordoned_node_is_not_eligible(own_nodes: Callable[..., Pool], kubeconfig_path: str,
                                       namespace: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pool = own_nodes(2)
    pool = own_nodes(1, name="cordoned", pool=pool, spec={"unschedulable": True})
    cordoned = pool.names[-1]
    _secrets(Cluster.connect(kubeconfig_path), namespace)
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    code, out, _ = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_OK, out
    assert (f"node {cordoned}: not eligible for the executor (cordoned (spec.unschedulable); "
            f"`kubectl uncordon {cordoned}` to use it)") in out
    assert f"node {cordoned}\n" not in out and "2 eligible node(s)" in out
    workload = selftest_job.executor_workload(load_config(config))
    nodes = selftest_job.target_nodes(Cluster.connect(kubeconfig_path),
                                      workload["spec"]["template"], None, True)
    assert nodes == pool.names[:2]


def test_forbidden_reads_are_blocking_rows(rbac_user: Callable[[str, list[Any]], str],
                                           kubeconfig_path: str, namespace: str, pool: Pool,
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Real RBAC without `list nodes` and `get secrets`."""
    _secrets(Cluster.connect(kubeconfig_path), namespace)
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    user = _denied(rbac_user, namespace, config, ("list", "nodes"), ("get", "secrets"))
    code, out, err = run_cli(capsys, "preflight", "-c", config, "--kubeconfig", user)
    assert code == EXIT_FAILED, out + err
    assert "Traceback" not in err and err == ""
    assert re.search(r"^  nodes +error +cannot list the nodes: forbidden \(nodes is forbidden", out,
                     re.M), out
    assert re.search(r"^  zuulConf +error +cannot read it: forbidden", out, re.M)
    assert 'grant {apiGroups: [""], resources: ["secrets"], verbs: ["get"]} in a Role' in out
    assert "the nodes could not be listed" in out and "verdict: BLOCKED" in out


def test_cordoned_eligibility_is_pure() -> None:
    cordoned = node("c")
    cordoned["spec"]["unschedulable"] = True
    assert str(preflight.eligibility(cordoned, {})).startswith("cordoned (spec.unschedulable)")
    assert preflight.eligibility(node("c"), {}) is None

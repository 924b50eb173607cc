"""The kit's node and cluster workflows on the real node (kubelet 1.35, containerd
2.2, runc 1.4: tests/k8s/node.py): `nodes prepare` puts the seccomp profile into
that kubelet's seccomp root, the self-test Job passes there with the kit's
settings, and each broken setting fails with the right diagnosis, as the real
kubelet and runtime report it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import run_cli, write_config
from tests.k8s.fixtures import Cluster as K8s
from tests.k8s.fixtures import real_node
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.cluster.selftest_job import executor_workload
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK

pytestmark = [pytest.mark.cluster, pytest.mark.nodes]

NODE = "workflow-node"  # a name of its own: tests/k8s/test_real_node.py runs `userns-node`
# This machine's kernel runs no AppArmor (as RHEL, Fedora CoreOS or Amazon Linux nodes):
# the config says so, as an operator of such a cluster must (see the last test).
NO_APPARMOR = {"apparmor": "none"}


@pytest.fixture(scope="module")
def node(k8s: K8s) -> Iterator[Any]:
    with real_node(k8s, NODE) as started, started.runtime_on_path():
        yield started


@pytest.fixture(scope="module")
def prepared(node: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`zuul-k8s nodes prepare` against the node, its profile aimed at the kubelet's seccomp root."""
    from zuul_k8s.cli import main

    profile = node.seccomp_root / "profiles" / "zuul-executor.json"
    assert not profile.exists()
    inventory = node.write_inventory(tmp_path_factory.mktemp("inventory") / "hosts.yaml")
    code = main(["nodes", "prepare", "-i", str(inventory)])
    assert code == EXIT_OK
    return profile


def run_cli_quiet(*argv: str) -> int:
    from zuul_k8s.cli import main

    return main(list(argv))


def test_nodes_prepare_puts_the_profile_where_the_kubelet_reads_it(prepared: Path) -> None:
    from zuul_k8s import profiles

    assert prepared.read_text() == profiles.seccomp_profile_path().read_text()


def _selftest(k8s: K8s, workload: dict[str, Any], image: str) -> tuple[int, dict[str, Any]]:
    """The cluster self-test on the node, through the same code as `zuul-k8s selftest --node`
    (which takes the pod from -c: the broken settings below are beyond any config)."""
    from zuul_k8s.cluster import selftest_job

    outcomes = selftest_job.run(Cluster.connect(k8s.kubeconfig), workload, image=image, node=NODE,
                                start_timeout=90, say=lambda _: None)
    document = json.loads(selftest_job.render_outcomes(outcomes, "json"))
    return (EXIT_OK if document["ok"] else EXIT_FAILED), document


def _apply_without_executors(k8s: K8s, config: str, ns: str) -> None:
    """The kit's objects, but no executor pods: on this 2-CPU node they would take the CPU
    the probe needs (their requests are the executor's, 1 CPU each)."""
    assert run_cli_quiet("apply", "-c", config, "--kubeconfig", k8s.kubeconfig, "--no-wait") == EXIT_OK
    Cluster.connect(k8s.kubeconfig).request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/zuul-executor")


def _workload(k8s: K8s, ns: str, tmp_path: Path) -> dict[str, Any]:
    """The executor's workload as the kit renders it, its objects applied (the Job keeps
    the executor's ServiceAccount)."""
    config = write_config(tmp_path, ns, isolation=NO_APPARMOR)
    _apply_without_executors(k8s, config, ns)
    return executor_workload(load_config(config))


def test_the_self_test_passes_on_the_real_node(k8s: K8s, prepared: Path, namespace: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.runtime.images import BASE

    _workload(k8s, namespace, tmp_path)
    capsys.readouterr()  # apply's lines
    code, out, err = run_cli(capsys, "selftest", "-c", write_config(tmp_path, namespace, isolation=NO_APPARMOR),
                             "--kubeconfig",
                             k8s.kubeconfig, "--node", NODE, "--image", BASE.tag, "-o", "json")
    assert code == EXIT_OK, out + err
    document = json.loads(out)
    [result] = document["nodes"]
    assert result["node"] == NODE
    checks = {c["id"]: c for c in result["report"]["checks"]}
    assert checks["env.userns"]["status"] == "pass" and checks["bwrap.proc"]["status"] == "pass"
    uid_map = result["report"]["environment"]["uid_map"]
    assert uid_map[0][0] == 0 and uid_map[0][1] > 0 and uid_map[0][2] == 65536  # its own user namespace


def _broken(workload: dict[str, Any], change: str) -> dict[str, Any]:
    broken = copy.deepcopy(workload)
    spec = broken["spec"]["template"]["spec"]
    container = spec["containers"][0]["securityContext"]
    if change == "procMount Default":
        container["procMount"] = "Default"
    elif change == "RuntimeDefault seccomp":
        spec["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    elif change == "root without SETFCAP":
        container.update(runAsUser=0, runAsGroup=0, runAsNonRoot=False, capabilities={"drop": ["ALL"]})
        spec["securityContext"].pop("fsGroup", None)
        spec["securityContext"].pop("runAsNonRoot", None)
    return broken


@pytest.mark.parametrize(("change", "rule"), [
    ("procMount Default", "proc-masked"),
    ("RuntimeDefault seccomp", "seccomp-refuses-namespaces"),
    ("root without SETFCAP", "root-without-setfcap"),
])
def test_each_broken_setting_fails_with_its_diagnosis(k8s: K8s, prepared: Path, namespace: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str], change: str,
                                                     rule: str) -> None:
    from tests.runtime.images import BASE

    code, document = _selftest(k8s, _broken(_workload(k8s, namespace, tmp_path), change), BASE.tag)
    assert code == EXIT_FAILED, document
    [result] = document["nodes"]
    assert "report" in result, result
    assert rule in [d["id"] for d in result["diagnoses"]], result["diagnoses"]


def test_without_the_profile_the_runtime_says_so(k8s: K8s, node: Any, namespace: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A node the playbook has not prepared: containerd refuses the container, and the
    self-test names the missing profile and `nodes prepare`, not the image."""
    from tests.runtime.images import BASE

    workload = _workload(k8s, namespace, tmp_path)
    workload["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = {
        "type": "Localhost", "localhostProfile": "profiles/not-prepared.json"}
    code, document = _selftest(k8s, workload, BASE.tag)
    assert code == EXIT_FAILED, document
    [result] = document["nodes"]
    assert "seccomp profile" in result["problem"] and "nodes prepare" in result["problem"], result


def test_an_apparmor_profile_on_a_node_without_apparmor_is_explained(k8s: K8s, node: Any, namespace: str,
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The kit's default (isolation.apparmor: Localhost) on a node whose kernel runs no
    AppArmor: the kubelet rejects the pod before any container runs; the self-test says
    why and which key fixes it, instead of "no log"."""
    from tests.runtime.images import BASE

    config = write_config(tmp_path, namespace)
    _apply_without_executors(k8s, config, namespace)
    capsys.readouterr()
    code, out, err = run_cli(capsys, "selftest", "-c", config, "--kubeconfig", k8s.kubeconfig, "--node", NODE,
                             "--image", BASE.tag)
    assert code == EXIT_FAILED, out + err
    assert ("the node runs no AppArmor, and the pod asks for an AppArmor profile: AppArmor: Pod was rejected: "
            "Cannot enforce AppArmor: AppArmor is not enabled on the host") in out
    assert "set isolation.apparmor: none" in out


def test_an_image_that_cannot_be_pulled_is_explained(k8s: K8s, prepared: Path, namespace: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The kubelet's own ErrImagePull: no registry answers the node. Its last event is the
    echo `Error: ErrImagePull`; the self-test quotes the runtime's reason instead."""
    config = write_config(tmp_path, namespace, isolation=NO_APPARMOR)
    _apply_without_executors(k8s, config, namespace)
    capsys.readouterr()
    code, out, err = run_cli(capsys, "selftest", "-c", config, "--kubeconfig", k8s.kubeconfig, "--node", NODE,
                             "--image", "localhost/zuul-k8s-no-such-image:missing", "--start-timeout", "60")
    print(out)
    assert code == EXIT_FAILED, out + err
    assert "no report: the probe's pod never started" in out
    assert "the image cannot be pulled" in out and "fix:" in out
    # The runtime's words (which image, why), not the kubelet's echo of the reason.
    assert 'image "localhost/zuul-k8s-no-such-image:missing"' in out and "Error: ErrImagePull" not in out

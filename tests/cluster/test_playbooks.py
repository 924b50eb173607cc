"""playbooks/selftest.yaml and upgrade.yaml with the real ansible-playbook,
against the API (the double runs the probe's Job pods under podman)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import PODMAN, deployment_path, needs_double, run_cli, write_config
from tests.tools import REPO, require_tool
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK

pytestmark = [pytest.mark.cluster, pytest.mark.runtime, pytest.mark.nodes, needs_double(PODMAN)]
PLAYBOOKS = REPO / "playbooks"


def playbook(name: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "ansible-playbook"
    if not binary.exists():
        binary = Path(require_tool("ansible-playbook"))
    argv = [str(binary), "-i", "localhost,", str(PLAYBOOKS / name),
            "-e", f"ansible_python_interpreter={sys.executable}"]
    for key, value in extra.items():
        argv += ["-e", f"{key}={value}"]
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
           "ANSIBLE_NOCOLOR": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def test_selftest_playbook_passes_on_every_node(podman_double: Any, kubeconfig_path: str,
                                                namespace: str, base_image: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace, image=base_image)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    result = playbook("selftest.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"node node-a: \d+ checks pass", result.stdout)
    assert re.search(r"node node-b: \d+ checks pass", result.stdout)
    assert "failed=0" in result.stdout
    jobs = Cluster.connect(kubeconfig_path).request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert jobs == []


def test_selftest_playbook_on_one_node(podman_double: Any, kubeconfig_path: str, namespace: str,
                                       base_image: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """-e node=NAME: the module gets node and no all_nodes (they exclude each other)."""
    config = write_config(tmp_path, namespace, image=base_image)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    result = playbook("selftest.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path, node="node-b")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"node node-b: \d+ checks pass", result.stdout)
    assert "node-a" not in result.stdout and "failed=0" in result.stdout


def test_selftest_via_ansible(podman_double: Any, kubeconfig_path: str, namespace: str,
                              base_image: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """`zuul-k8s selftest --via-ansible`: playbooks/selftest.yaml through ansible-runner."""
    config = write_config(tmp_path, namespace, image=base_image)
    Cluster.connect(kubeconfig_path).request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    code, out, err = run_cli(capsys, "selftest", "--via-ansible", "-c", config, "--kubeconfig",
                             kubeconfig_path, "--node", "node-a")
    assert code == EXIT_OK, out + err
    assert re.search(r"node node-a: \d+ checks pass", out) and "failed=0" in out
    jobs = Cluster.connect(kubeconfig_path).request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert jobs == []


def test_upgrade_via_ansible_fails_on_a_failing_canary(
        podman_double: Any, kubeconfig_path: str, namespace: str, no_bwrap_image: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    code, out, err = run_cli(capsys, "upgrade", "--via-ansible", "--image", no_bwrap_image,
                             "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_FAILED, out + err
    assert "canary failed: the executors were not changed" in out
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != no_bwrap_image


def test_upgrade_playbook_fails_on_a_failing_canary(podman_double: Any, kubeconfig_path: str,
                                                    namespace: str, no_bwrap_image: str,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, namespace)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    result = playbook("upgrade.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path, image=no_bwrap_image)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "canary failed: the executors were not changed" in result.stdout
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != no_bwrap_image

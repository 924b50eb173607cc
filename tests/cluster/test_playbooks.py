"""playbooks/selftest.yaml and upgrade.yaml with the real ansible-playbook,
against the real control plane on KWOK nodes (the probe's Job pods log the
probe's real report from podman, conftest.probe_logs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.conftest import Pool
from tests.cluster.helpers import deployment_path, run_cli, write_config
from tests.tools import REPO, require_tool
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK

pytestmark = [pytest.mark.cluster, pytest.mark.runtime, pytest.mark.nodes]
Serve = Callable[[str], None]
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


def test_selftest_playbook_passes_on_every_node(kubeconfig_path: str, namespace: str, pool: Pool,
                                                serve_report: Serve, base_image: str,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    serve_report("pass")
    config = write_config(tmp_path, namespace, image=base_image, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    result = playbook("selftest.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in pool.names:
        assert re.search(rf"node {name}: \d+ checks pass", result.stdout), result.stdout
    assert "failed=0" in result.stdout
    jobs = Cluster.connect(kubeconfig_path).request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert jobs == []


def test_selftest_playbook_on_one_node(kubeconfig_path: str, namespace: str, pool: Pool,
                                       serve_report: Serve, base_image: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """-e node=NAME: the module gets node and no all_nodes (they exclude each other)."""
    serve_report("pass")
    config = write_config(tmp_path, namespace, image=base_image, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    result = playbook("selftest.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path, node=pool.names[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"node {pool.names[1]}: \d+ checks pass", result.stdout)
    assert pool.names[0] not in result.stdout and "failed=0" in result.stdout


def test_selftest_via_ansible(kubeconfig_path: str, namespace: str, pool: Pool,
                              serve_report: Serve, base_image: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """`zuul-k8s selftest --via-ansible`: playbooks/selftest.yaml through ansible-runner."""
    serve_report("pass")
    config = write_config(tmp_path, namespace, image=base_image, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path,
                   "--no-wait")[0] == EXIT_OK
    code, out, err = run_cli(capsys, "selftest", "--via-ansible", "-c", config, "--kubeconfig",
                             kubeconfig_path, "--node", pool.names[0])
    assert code == EXIT_OK, out + err
    assert re.search(rf"node {pool.names[0]}: \d+ checks pass", out) and "failed=0" in out
    jobs = Cluster.connect(kubeconfig_path).request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert jobs == []


def test_upgrade_via_ansible_fails_on_a_failing_canary(
        kubeconfig_path: str, namespace: str, pool: Pool, serve_report: Serve,
        no_bwrap_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve_report("fail")
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    code, out, err = run_cli(capsys, "upgrade", "--via-ansible", "--image", no_bwrap_image,
                             "-c", config, "--kubeconfig", kubeconfig_path)
    assert code == EXIT_FAILED, out + err
    assert "canary failed: the executors were not changed" in out
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != no_bwrap_image


def test_upgrade_playbook_fails_on_a_failing_canary(kubeconfig_path: str, namespace: str,
                                                    pool: Pool, serve_report: Serve,
                                                    no_bwrap_image: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    serve_report("fail")
    config = write_config(tmp_path, namespace, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig_path)[0] == EXIT_OK
    result = playbook("upgrade.yaml", tmp_path, zuul_k8s_config=config,
                      kubeconfig=kubeconfig_path, image=no_bwrap_image)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "canary failed: the executors were not changed" in result.stdout
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != no_bwrap_image

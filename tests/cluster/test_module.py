"""library/zuul_k8s_cluster.py on its own: its documentation against its argument_spec,
and `changed` that says whether the cluster changed. The module runs as Ansible runs it:
a separate Python process given its arguments as JSON."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Pool
from tests.cluster.helpers import deployment_path, run_cli, write_config
from tests.pyfiles import load, run_ansible_module
from tests.tools import REPO
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.errors import EXIT_OK

pytestmark = pytest.mark.cluster
MODULE = REPO / "zuul_k8s" / "playbooks" / "library" / "zuul_k8s_cluster.py"
OLD = "quay.io/zuul-ci/zuul-executor:12.1.0"


def run_module(**args: Any) -> dict[str, Any]:
    return run_ansible_module(MODULE, args)


def test_documentation_matches_the_argument_spec() -> None:
    module = load(MODULE)
    doc = yaml.safe_load(module.DOCUMENTATION)
    spec = module.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        assert option["type"] == spec[name]["type"], name
        assert option.get("default") == spec[name].get("default"), name
        assert option.get("choices") == spec[name].get("choices"), name
        assert bool(option.get("required")) == bool(spec[name].get("required")), name
    attributes = doc["attributes"]
    assert attributes["check_mode"]["support"] == "none"  # supports_check_mode=False
    assert attributes["diff_mode"]["support"] == "none"
    assert "changed" in yaml.safe_load(module.RETURN)


def test_ansible_doc_reads_the_module() -> None:
    binary = Path(sys.executable).parent / "ansible-doc"
    if not binary.exists():
        pytest.skip("ansible-doc is not installed next to this Python")
    result = subprocess.run([str(binary), "-M", str(MODULE.parent), "zuul_k8s_cluster"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "check_mode" in result.stdout and "zuul_conf" in result.stdout


def test_node_and_all_nodes_exclude_each_other_by_value() -> None:
    answer = run_module(action="selftest", node="node-a", all_nodes=True)
    assert answer.get("failed") and "mutually exclusive: node|all_nodes" in answer["msg"]


def _installed(kubeconfig: str, namespace: str, pool: Pool, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> str:
    config = write_config(tmp_path, namespace, image=OLD, scheduling=pool.scheduling)
    assert run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig,
                   "--no-wait")[0] == EXIT_OK
    return config


def test_nothing_to_do_is_not_changed(kubeconfig_path: str, namespace: str, pool: Pool,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    answer = run_module(action="upgrade", image=OLD, config=config, kubeconfig=kubeconfig_path)
    assert answer["changed"] is False and answer["ok"] is True, answer
    assert any("nothing to do" in line for line in answer["log"])


def test_invalid_objects_fail_before_anything_is_applied(
        kubeconfig_path: str, namespace: str, pool: Pool, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The module validates like `zuul-k8s upgrade`: baseline refuses an Unconfined seccomp."""
    _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    before = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    bad = write_config(tmp_path, namespace, "bad.yaml", isolation={"seccomp": "Unconfined"})
    answer = run_module(action="upgrade", image="registry.example/zuul-executor:13",
                        config=bad, kubeconfig=kubeconfig_path)
    assert answer.get("failed") and answer["changed"] is False, answer
    assert "refusing to touch the cluster: 1 error(s)" in answer["msg"]
    assert "seccomp" in answer["msg"]
    after = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert before and after and after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


@pytest.mark.runtime
def test_failed_canary_is_not_changed(kubeconfig_path: str, namespace: str, pool: Pool,
                                      serve_report: Callable[[str], None], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The canary's pod logs the probe's real failing report (conftest.probe_logs)."""
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("fail")
    answer = run_module(action="upgrade", image="registry.example/zuul-executor:13",
                        config=config, kubeconfig=kubeconfig_path, selftest_timeout=60)
    assert answer["changed"] is False and answer["ok"] is False, answer
    assert any("canary failed" in line for line in answer["log"])


@pytest.mark.runtime
def test_upgrade_is_changed_once_and_takes_zuul_conf(
        kubeconfig_path: str, namespace: str, pool: Pool, serve_report: Callable[[str], None],
        base_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real rollout on KWOK nodes; the probe's pods log its real passing report."""
    config = _installed(kubeconfig_path, namespace, pool, tmp_path, capsys)
    serve_report("pass")
    zuul_conf = tmp_path / "zuul.conf"
    zuul_conf.write_text("[executor]\nhostname = %(ZUUL_EXECUTOR_HOSTNAME)s\n")
    args = {"action": "upgrade", "image": base_image, "config": config,
            "kubeconfig": kubeconfig_path, "zuul_conf": str(zuul_conf)}
    answer = run_module(**args)
    assert answer["changed"] is True and answer["ok"] is True, answer
    deployment = Cluster.connect(kubeconfig_path).get(deployment_path(namespace))
    assert deployment is not None
    assert "zuul-k8s.io/zuul-conf-sha256" in deployment["spec"]["template"]["metadata"][
        "annotations"]
    again = run_module(**args)
    assert again["changed"] is False and again["ok"] is True, again

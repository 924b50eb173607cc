"""The playbooks without the kit's CLI: plain `ansible-playbook`, as docs/nodes.md says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tools import REPO

pytestmark = pytest.mark.nodes
PLAYBOOKS = REPO / "playbooks"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def ansible_playbook(inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), *args], capture_output=True,
                          text=True, timeout=300, env=env)


def local_inventory(tmp_path: Path, **hostvars: object) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"here": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars,
    }}}}))
    return path


def test_playbooks_pass_syntax_check(tmp_path: Path) -> None:
    inventory = local_inventory(tmp_path)
    for name in ("node-prepare.yaml", "node-cleanup.yaml"):
        result = ansible_playbook(inventory, "--syntax-check", str(PLAYBOOKS / name))
        assert result.returncode == 0, result.stdout + result.stderr


def test_play_refuses_a_misspelt_variable(tmp_path: Path) -> None:
    inventory = local_inventory(tmp_path, zuul_k8s_selinux="skip")
    result = ansible_playbook(inventory, str(PLAYBOOKS / "node-prepare.yaml"), "--check")
    assert result.returncode != 0
    assert "bad variables: zuul_k8s_selinux: unknown variable; known: zuul_k8s_apparmor" in (
        result.stdout)


def test_play_refuses_a_bad_value_after_templating(tmp_path: Path) -> None:
    inventory = local_inventory(tmp_path, zuul_k8s_kubelet_max_pods="{{ 0 }}")
    result = ansible_playbook(inventory, str(PLAYBOOKS / "node-prepare.yaml"), "--check")
    assert result.returncode != 0
    assert "zuul_k8s_kubelet_max_pods: 0 is not valid" in result.stdout


def test_check_and_diff_change_nothing(tmp_path: Path) -> None:
    profile = tmp_path / "seccomp" / "profiles" / "zuul-executor.json"
    inventory = local_inventory(tmp_path, zuul_k8s_selinux_module="skip",
                                zuul_k8s_seccomp_profile_path=str(profile))
    result = ansible_playbook(inventory, str(PLAYBOOKS / "node-prepare.yaml"), "--check",
                              "--diff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed=2" in result.stdout  # the seccomp dir and file would be created
    assert '+  "defaultAction": "SCMP_ACT_ERRNO",' in result.stdout  # the diff of the profile
    assert not profile.parent.parent.exists()

"""`nodes prepare` over SSH with each inventory form ansible-playbook -i takes: an INI file,
a directory with group_vars/ and host_vars/, and an executable inventory script.

One node per form (tests/nodes/sshnodes.py: own sshd, network and mount namespace; no
SELinux store, so the SELinux part is skipped by detection or by the inventory's own
variable). Each run reaches its node through the connection variables only that form
carries, and installs the seccomp profile there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nodes.helpers import CliRun, table_rows, zuul_k8s
from tests.nodes.sshnodes import NodeSpec, SshNodes
from tests.tools import require_tool
from zuul_k8s import profiles

pytestmark = pytest.mark.nodes
SECCOMP = "/var/lib/kubelet/seccomp/profiles/zuul-executor.json"
FORMS = ("ini", "directory", "script")


def _ini(path: Path, host: str, hostvars: dict[str, Any], common: dict[str, Any]) -> Path:
    def line(values: dict[str, Any]) -> str:
        return " ".join(f"{k}='{v}'" for k, v in values.items())
    path.write_text(f"[workers]\n{host} {line(hostvars)}\n\n[all:vars]\n"
                    + "\n".join(f"{k}='{v}'" for k, v in common.items()) + "\n")
    return path


def _directory(path: Path, host: str, hostvars: dict[str, Any], common: dict[str, Any]) -> Path:
    (path / "group_vars").mkdir(parents=True)
    (path / "host_vars").mkdir()
    (path / "hosts").write_text(f"[workers]\n{host}\n")
    (path / "group_vars" / "all.yaml").write_text(json.dumps(common))
    # Only this file says the node's address and that its SELinux part is skipped.
    (path / "host_vars" / f"{host}.yaml").write_text(
        json.dumps({**hostvars, "zuul_k8s_selinux_module": "skip"}))
    return path


def _script(path: Path, host: str, hostvars: dict[str, Any], common: dict[str, Any]) -> Path:
    listing = {"workers": {"hosts": [host], "vars": common},
               "_meta": {"hostvars": {host: hostvars}}}
    path.write_text("#!/usr/bin/python3\nimport json, sys\n"
                    f"LISTING = {json.dumps(listing)!r}\n"
                    "print('{}' if '--host' in sys.argv else LISTING)\n")
    path.chmod(0o755)
    return path


WRITERS = {"ini": _ini, "directory": _directory, "script": _script}


class Runs:
    def __init__(self) -> None:
        self.prepare: dict[str, CliRun] = {}
        self.profile: dict[str, str] = {}
        self.logins: dict[str, str] = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    for tool in ("sshd", "ssh", "ssh-keygen", "ip", "unshare"):
        require_tool(tool)
    workdir = tmp_path_factory.mktemp("inventory-forms")
    nodes = SshNodes(workdir / "nodes", [NodeSpec(f"{form}-node", selinux_store=False)
                                         for form in FORMS])
    try:
        nodes.start()
        common = nodes.inventory()["all"]["vars"]
        state = Runs()
        for form, node in zip(FORMS, nodes.nodes, strict=True):
            source = WRITERS[form](workdir / f"inventory-{form}", node.spec.name,
                                   {"ansible_host": node.address}, common)
            state.prepare[form] = zuul_k8s("nodes", "prepare", "-i", str(source))
            state.profile[form] = nodes.in_node(node.spec.name, f"cat {SECCOMP}")
            state.logins[form] = (node.root / "sshd.log").read_text(errors="replace")
        yield state
    finally:
        nodes.stop()


@pytest.mark.parametrize("form", FORMS)
def test_each_form_prepares_its_node_over_ssh(runs: Runs, form: str) -> None:
    run = runs.prepare[form]
    assert run.rc == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    table = table_rows(run.stdout)
    assert {host for host, _ in table} == {f"{form}-node"}
    assert table[(f"{form}-node", "seccomp")][0] == "installed"
    assert runs.profile[form] == profiles.seccomp_profile_path().read_text()
    assert "Accepted publickey for root" in runs.logins[form]


def test_host_vars_of_a_directory_inventory_reach_the_play(runs: Runs) -> None:
    """host_vars/directory-node.yaml says skip: the play skips SELinux for that reason."""
    result, why = table_rows(runs.prepare["directory"].stdout)[("directory-node", "selinux")]
    detected = table_rows(runs.prepare["ini"].stdout)[("ini-node", "selinux")]
    assert result == "skipped" and detected[0] == "skipped"
    assert why != detected[1], (why, detected)  # skipped by the variable, not by detection

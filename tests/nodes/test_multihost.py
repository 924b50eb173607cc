"""Several nodes in one run, over SSH: each completes or fails on its own, and the table says which.

Nodes (tests/nodes/sshnodes.py: one sshd per node, own network and mount namespace):
- `good`: a private copy of this machine's SELinux store; gets everything.
- `no-tools`: semodule missing; the kit's SELinux module requested: refused, with the fix.
- `readonly`: the kubelet's seccomp root is read-only: fails on purpose mid-run.
- `gone`: in the inventory, nothing listening: unreachable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.nodes.conftest import KIT_MODULE
from tests.nodes.helpers import CliRun, semodule_list, sesearch_mount, table_rows, zuul_k8s
from tests.nodes.sshnodes import NodeSpec, SshNodes
from tests.tools import require_tool
from zuul_k8s import profiles

pytestmark = pytest.mark.nodes
SECCOMP = "/var/lib/kubelet/seccomp/profiles/zuul-executor.json"


class Runs:
    def __init__(self, nodes: SshNodes) -> None:
        self.nodes = nodes
        self.prepare: CliRun | None = None
        self.again: CliRun | None = None
        self.verify: CliRun | None = None
        self.good_profile = ""
        self.readonly_profile = ""
        self.machine_seccomp: tuple[str | None, str | None] = (None, None)
        self.no_tools_profile = ""
        self.mount_ns: dict[str, str] = {}
        self.sshd_logs: dict[str, str] = {}
        self.good_policy: list[tuple[int, int]] = []  # after prepare, after the second prepare


@pytest.fixture(scope="module")
def runs(selinux_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    for tool in ("sshd", "ssh", "ssh-keygen", "ip", "unshare"):
        require_tool(tool)
    workdir = tmp_path_factory.mktemp("sshnodes")
    nodes = SshNodes(workdir / "nodes", [
        NodeSpec("good", hostvars={"zuul_k8s_selinux_module": "install"}),
        NodeSpec("no-tools", selinux_store=False, hide_semodule=True,
                 hostvars={"zuul_k8s_selinux_module": "install"}),
        NodeSpec("readonly", selinux_store=False, readonly_seccomp_root=True),
    ])
    try:
        nodes.start()
        inventory = workdir / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(nodes.inventory(
            {"gone": {"ansible_host": "127.0.0.1", "ansible_port": 1}})))
        state = Runs(nodes)
        before = _state_of(Path(SECCOMP))
        state.prepare = zuul_k8s("nodes", "prepare", "-i", str(inventory))
        state.good_profile = nodes.in_node("good", f"cat {SECCOMP}")
        state.readonly_profile = nodes.in_node("readonly", f"cat {SECCOMP}")
        state.no_tools_profile = nodes.in_node("no-tools", f"cat {SECCOMP}")
        state.mount_ns = {n.spec.name: nodes.in_node(n.spec.name, "readlink /proc/self/ns/mnt").strip()
                          for n in nodes.nodes}
        state.mount_ns["(this machine)"] = os.readlink("/proc/self/ns/mnt")
        state.good_policy.append(_policy_stat(nodes))
        state.again = zuul_k8s("nodes", "prepare", "-i", str(inventory), "--limit", "good")
        state.good_policy.append(_policy_stat(nodes))
        state.verify = zuul_k8s("nodes", "verify", "-i", str(inventory), "--limit", "good")
        state.machine_seccomp = (before, _state_of(Path(SECCOMP)))
        state.sshd_logs = {n.spec.name: (n.root / "sshd.log").read_text(errors="replace")
                           for n in nodes.nodes}
        yield state
    finally:
        nodes.stop()


def _policy_stat(nodes: SshNodes) -> tuple[int, int]:
    good = next(n for n in nodes.nodes if n.spec.name == "good")
    stat = max(good.policy_dir.glob("policy.*")).stat()
    return stat.st_ino, stat.st_mtime_ns


def _state_of(path: Path) -> str | None:
    return f"{path.stat().st_mtime_ns}:{path.stat().st_size}" if path.exists() else None


def rows(run: CliRun | None) -> dict[tuple[str, str], tuple[str, str]]:
    assert run is not None
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return table_rows(run.stdout)


def all_rows(run: CliRun | None) -> list[tuple[str, str, str]]:
    """Every row of the final table as (host, part, result), warnings left out."""
    assert run is not None
    table = run.stdout.splitlines()
    start = max(i for i, line in enumerate(table) if line.startswith("HOST "))
    cols = [table[start].index(word) for word in ("PART", "RESULT", "WHY")]
    found = [(line[:cols[0]].strip(), line[cols[0]:cols[1]].strip(), line[cols[1]:cols[2]].strip())
             for line in table[start + 1:] if line.strip()]
    return [row for row in found if row[2] != "warning"]


def test_one_run_reaches_every_node_over_its_own_ssh(runs: Runs) -> None:
    """Four hosts in one run; the three with an sshd were reached through it, with the test's key."""
    assert {host for host, _, _ in all_rows(runs.prepare)} == {"good", "no-tools", "readonly", "gone"}
    for name, log in runs.sshd_logs.items():
        assert "Accepted publickey for root" in log, f"{name}: sshd saw no login: {log[-500:]}"
    assert len(runs.nodes.nodes) >= 2


def test_each_node_has_its_own_state(runs: Runs) -> None:
    """Own mount namespace per node; what the play wrote on one node is on that node only."""
    assert all(ns.startswith("mnt:[") for ns in runs.mount_ns.values()), runs.mount_ns
    assert len(set(runs.mount_ns.values())) == len(runs.mount_ns), runs.mount_ns
    assert runs.good_profile == profiles.seccomp_profile_path().read_text()
    assert "No such file" in runs.readonly_profile
    assert "No such file" in runs.no_tools_profile  # refused: nothing half-done


def test_the_table_shows_each_failure_and_the_rest_complete(runs: Runs) -> None:
    """The whole table, host by host: one completes, each other one fails for its own cause."""
    assert runs.prepare is not None and runs.prepare.rc == 1
    assert all_rows(runs.prepare) == [
        ("gone", "selinux", "not run"),
        ("gone", "seccomp", "not run"),
        ("gone", "apparmor", "not run"),
        ("gone", "(host)", "failed"),
        ("good", "selinux", "installed"),
        ("good", "seccomp", "installed"),
        ("good", "apparmor", "skipped"),
        ("no-tools", "selinux", "refused"),
        ("no-tools", "seccomp", "not run"),
        ("no-tools", "apparmor", "skipped"),
        ("no-tools", "(host)", "failed"),
        ("readonly", "selinux", "skipped"),
        ("readonly", "seccomp", "failed"),
        ("readonly", "apparmor", "skipped"),
    ]


def test_the_run_fails_but_the_good_node_completes(runs: Runs) -> None:
    table = rows(runs.prepare)
    assert runs.prepare is not None and runs.prepare.rc == 1
    assert table[("good", "selinux")][0] == "installed"
    assert table[("good", "seccomp")][0] == "installed"
    assert table[("good", "apparmor")] == ("skipped", "AppArmor is not enabled on this node")
    assert runs.good_profile == profiles.seccomp_profile_path().read_text()


def test_good_node_has_its_own_policy_with_both_rules(runs: Runs) -> None:
    good = next(n for n in runs.nodes.nodes if n.spec.name == "good")
    policy = max(good.policy_dir.glob("policy.*"))
    found = sesearch_mount("proc_t", policy) + sesearch_mount("devpts_t", policy)
    assert "allow container_t proc_t:filesystem mount;" in found
    assert "allow container_t devpts_t:filesystem mount;" in found
    # Independent node state: this machine's own store did not get the module.
    assert KIT_MODULE not in semodule_list()


def test_node_without_selinux_tools_gets_the_fix_not_a_traceback(runs: Runs) -> None:
    result, why = rows(runs.prepare)[("no-tools", "selinux")]
    assert result == "refused"
    assert "semodule is not installed: install policycoreutils" in why
    assert rows(runs.prepare)[("no-tools", "seccomp")][0] == "not run"  # nothing half-done


def test_failure_mid_run_is_reported_with_its_cause(runs: Runs) -> None:
    result, why = rows(runs.prepare)[("readonly", "seccomp")]
    assert result == "failed" and "Read-only file system" in why
    assert "No such file" in runs.readonly_profile
    assert runs.prepare is not None
    progress = [line.split(None, 2) for line in runs.prepare.stdout.splitlines()]
    assert ["readonly", "failed", "seccomp: create directory: There was an issue creating "
            "/var/lib/kubelet/seccomp/profiles as requested: [Errno 30] Read-only file system: "
            "b'/var/lib/kubelet/seccomp/profiles'"] in progress


def test_unreachable_host_is_reported(runs: Runs) -> None:
    result, why = rows(runs.prepare)[("gone", "(host)")]
    assert result == "failed" and why.startswith("unreachable:") and "port 1" in why


def test_limit_runs_one_host_and_finds_nothing_to_do(runs: Runs) -> None:
    table = rows(runs.again)
    assert runs.again is not None and runs.again.rc == 0
    assert {host for host, _ in table} == {"good"}
    assert table[("good", "selinux")][0] == "unchanged"
    assert table[("good", "seccomp")][0] == "unchanged"
    assert runs.good_policy[1] == runs.good_policy[0], "the second run rebuilt the node's policy"
    verify = rows(runs.verify)
    assert runs.verify is not None and runs.verify.rc == 0
    assert verify[("good", "selinux")][0] == "ok"


def test_this_machine_is_not_a_test_node(runs: Runs) -> None:
    """The nodes' writes went to their own mount namespaces, not to this machine."""
    before, after = runs.machine_seccomp
    assert before == after

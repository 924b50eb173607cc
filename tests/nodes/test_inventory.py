"""`zuul-k8s nodes` refuses a bad inventory before Ansible runs: FILE:PATH, the fix, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nodes.helpers import zuul_k8s
from zuul_k8s.errors import UserError
from zuul_k8s.nodes import inventory


def problems_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        inventory.load(str(path))
    return [str(p).replace(str(path), "INV") for p in caught.value.problems]


def test_valid_inventory_lists_its_hosts(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "all:\n  vars: {zuul_k8s_selinux_module: auto}\n  hosts: {a: }\n"
        "  children:\n    workers:\n      hosts:\n        b: {zuul_k8s_kubelet_max_pods: 250}\n"
        "        c: {zuul_k8s_seccomp: '{{ lookup(\"env\", \"X\") }}'}\n"
    )
    assert inventory.load(str(path)) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all:\n  hosts:\n    n1: {zuul_k8s_selinux_module: yes}\n",
         "INV:all.hosts.n1.zuul_k8s_selinux_module: True is not one of: auto, install, skip"),
        ("all:\n  hosts:\n    n1: {zuul_k8s_selinux: skip}\n",
         "INV:all.hosts.n1.zuul_k8s_selinux: unknown key; allowed keys:"),
        ("all:\n  vars: {zuul_k8s_seccomp_profile_path: relative/x.json}\n  hosts: {n1: }\n",
         "INV:all.vars.zuul_k8s_seccomp_profile_path: 'relative/x.json' is not valid. Absolute"),
        ("all:\n  children:\n    g:\n      host: {n1: }\n",
         "INV:all.children.g.host: unknown key; a group holds hosts, vars, children"),
        ("all:\n  hosts: [n1, n2]\n", "INV:all.hosts: hosts must be a mapping, got list"),
        ("all:\n  vars: {a: 1}\n", "INV: defines no hosts"),
        ("[nodes]\nn1 ansible_host=10.0.0.1\n", "INV: not valid YAML"),
        ("- n1\n- n2\n", "INV: not a YAML inventory"),
        ("", "INV: empty; zuul-k8s reads YAML inventories"),
    ],
)
def test_bad_inventory_messages(text: str, expected: str, tmp_path: Path) -> None:
    found = problems_of(text, tmp_path)
    assert any(p.startswith(expected) for p in found), found


def test_ini_inventory_names_the_conversion(tmp_path: Path) -> None:
    found = problems_of("[nodes]\nn1 ansible_host=10.0.0.1\n", tmp_path)
    assert any("ansible-inventory -i FILE --list -y" in p for p in found), found


def test_cli_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("all:\n  hosts:\n    n1: {zuul_k8s_apparmor: always}\n")
    run = zuul_k8s("nodes", "prepare", "-i", str(path))
    assert run.rc == 2
    assert f"error: {path}:all.hosts.n1.zuul_k8s_apparmor: 'always' is not one of" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""  # nothing ran


def test_cli_missing_inventory_file(tmp_path: Path) -> None:
    run = zuul_k8s("nodes", "verify", "-i", str(tmp_path / "nope.yaml"))
    assert run.rc == 2 and "nope.yaml: no such file" in run.stderr


def test_limit_matching_no_host_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n")
    run = zuul_k8s("nodes", "verify", "-i", str(path), "--limit", "nosuch")
    assert run.rc == 2, run.stdout + run.stderr
    assert f"error: {path}: no host matches --limit nosuch" in run.stderr

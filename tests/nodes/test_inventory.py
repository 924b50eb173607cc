"""`zuul-k8s nodes` reads any inventory through Ansible's own parser (ansible-inventory) and
refuses a bad one before Ansible runs: the host and the variable, the fix, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.nodes.helpers import zuul_k8s
from zuul_k8s.errors import UserError
from zuul_k8s.nodes import inventory


def problems_of(text: str, tmp_path: Path, name: str = "inventory.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        inventory.load(str(path))
    return [str(p).replace(str(path), "INV") for p in caught.value.problems]


def test_valid_yaml_inventory_lists_its_hosts(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "all:\n  vars: {zuul_k8s_selinux_module: auto}\n  hosts: {a: }\n"
        "  children:\n    workers:\n      hosts:\n        b: {zuul_k8s_kubelet_max_pods: 250}\n"
        "        c: {zuul_k8s_seccomp: '{{ lookup(\"env\", \"X\") }}'}\n"
    )
    assert inventory.load(str(path)) == ["a", "b", "c"]


def test_ini_inventory_is_read_as_ansible_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("[workers]\nn1 ansible_host=10.0.0.1\nn2\n\n[workers:vars]\n"
                    "zuul_k8s_selinux_module=skip\n")
    found, ignored = inventory.read(str(path))
    assert ignored == [] and found.hosts == ["n1", "n2"]
    assert found.hostvars["n2"]["zuul_k8s_selinux_module"] == "skip"  # from the group
    assert found.hostvars["n1"]["ansible_host"] == "10.0.0.1"


def test_directory_inventory_merges_group_and_host_vars(tmp_path: Path) -> None:
    (tmp_path / "inv" / "group_vars").mkdir(parents=True)
    (tmp_path / "inv" / "host_vars").mkdir()
    (tmp_path / "inv" / "hosts.ini").write_text("[workers]\nn1\nn2\n")
    (tmp_path / "inv" / "group_vars" / "workers.yaml").write_text("zuul_k8s_apparmor: skip\n")
    (tmp_path / "inv" / "host_vars" / "n2.yaml").write_text("zuul_k8s_apparmor: always\n")
    with pytest.raises(UserError) as caught:
        inventory.load(str(tmp_path / "inv"))
    found = [str(p) for p in caught.value.problems]
    assert len(found) == 1 and found[0].startswith(
        f"{tmp_path / 'inv'}:host n2: zuul_k8s_apparmor: 'always' is not one of: "
        "auto, install, skip"), found  # n1 gets skip from group_vars: fine


def test_inventory_script(tmp_path: Path) -> None:
    script = tmp_path / "inventory.py"
    script.write_text("#!/usr/bin/python3\nimport json, sys\n"
                      "if '--host' in sys.argv:\n    print('{}')\nelse:\n"
                      "    print(json.dumps({'workers': {'hosts': ['s1', 's2']}, '_meta': "
                      "{'hostvars': {'s1': {'zuul_k8s_seccomp': 'skip'}}}}))\n")
    script.chmod(0o755)
    assert inventory.load(str(script)) == ["s1", "s2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all:\n  hosts:\n    n1: {zuul_k8s_selinux_module: yes}\n",
         "INV:host n1: zuul_k8s_selinux_module: True is not one of: auto, install, skip"),
        ("[nodes]\nn1 zuul_k8s_selinux_module=yes\n",
         "INV:host n1: zuul_k8s_selinux_module: 'yes' is not one of: auto, install, skip"),
        ("all:\n  hosts:\n    n1: {zuul_k8s_selinux: skip}\n",
         "INV:host n1: zuul_k8s_selinux: unknown key; allowed keys:"),
        ("all:\n  vars: {zuul_k8s_seccomp_profile_path: relative/x.json}\n  hosts: {n1: }\n",
         "INV:host n1: zuul_k8s_seccomp_profile_path: 'relative/x.json' is not valid. Absolute"),
        ("all:\n  children:\n    g:\n      host: {n1: }\n",
         "INV:g.host: unknown key, Ansible ignores it; a group holds hosts, vars, children"),
        ("all:\n  hosts: [n1, n2]\n",
         'INV: Ansible cannot read it as an inventory (yaml plugin: Invalid "hosts" entry for '
         '"all" group, requires a dictionary'),
        ("all:\n  vars: {a: 1}\n", "INV: defines no hosts"),
        ("- n1\n- n2\n", "INV: Ansible cannot read it as an inventory (yaml plugin:"),
        ("", "INV: defines no hosts"),
    ],
)
def test_bad_inventory_messages(text: str, expected: str, tmp_path: Path) -> None:
    found = problems_of(text, tmp_path)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_per_host(tmp_path: Path) -> None:
    found = problems_of("[a]\nn1 zuul_k8s_apparmor=always\nn2 zuul_k8s_seccomp=never\n", tmp_path,
                        "hosts.ini")
    assert [p.split(":")[1] for p in found] == ["host n1", "host n2"], found


def test_cli_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "inv.ini"
    path.write_text("[nodes]\nn1 zuul_k8s_apparmor=always\n")
    run = zuul_k8s("nodes", "prepare", "-i", str(path))
    assert run.rc == 2
    assert f"error: {path}:host n1: zuul_k8s_apparmor: 'always' is not one of" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""  # nothing ran


def test_cli_missing_inventory_file(tmp_path: Path) -> None:
    run = zuul_k8s("nodes", "verify", "-i", str(tmp_path / "nope.yaml"))
    assert run.rc == 2 and "nope.yaml: no such file or directory" in run.stderr


def test_limit_matching_no_host_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("n1 ansible_connection=local\n")
    run = zuul_k8s("nodes", "verify", "-i", str(path), "--limit", "nosuch")
    assert run.rc == 2, run.stdout + run.stderr
    assert f"error: {path}: no host matches --limit nosuch" in run.stderr


def test_the_read_is_ansibles_not_a_yaml_reader(tmp_path: Path) -> None:
    """A JSON inventory and host ranges exist only for Ansible's own plugins."""
    path = tmp_path / "hosts.ini"
    path.write_text("[workers]\nnode[1:3].example.org\n")
    assert inventory.load(str(path)) == [f"node{i}.example.org" for i in (1, 2, 3)]
    as_json = tmp_path / "inventory.json"
    as_json.write_text(json.dumps({"all": {"hosts": {"j1": {"zuul_k8s_seccomp": "skip"}}}}))
    assert inventory.load(str(as_json)) == ["j1"]

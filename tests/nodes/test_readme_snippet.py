"""README's plain `ansible-playbook` snippet for the node playbook is right as written."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.tools import REPO
from zuul_k8s.nodes import inventory

README = REPO / "README.md"
INVENTORY_COMMENT = "# inventory.yaml: "


def snippet() -> tuple[str, str]:
    """(the inventory in the comment, the ansible-playbook line) of the README's snippet."""
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()]
    at = next(i for i, line in enumerate(lines) if "ansible-playbook" in line and "node-prepare.yaml" in line)
    assert lines[at - 1].startswith(INVENTORY_COMMENT), "the snippet's inventory comment is gone"
    return lines[at - 1].removeprefix(INVENTORY_COMMENT), lines[at]


def test_the_inventory_is_valid_for_the_kit(tmp_path: Path) -> None:
    data = yaml.safe_load(snippet()[0])
    path = tmp_path / "inventory.yaml"
    path.write_text(snippet()[0])
    assert inventory.load(str(path)) == ["node1.example.org"]
    assert {"zuul_k8s_selinux_module", "zuul_k8s_apparmor"} <= set(data["all"]["vars"])


def test_the_command_runs_the_prepare_playbook(tmp_path: Path) -> None:
    inventory_text, line = snippet()
    words = shlex.split(line, comments=True)
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    argv = [word for word in words if "=" not in word or word.startswith("-")]
    assert env == {"ANSIBLE_PIPELINING": "1"}
    assert argv[0] == "ansible-playbook" and (REPO / argv[3]).resolve() == (
        REPO / "zuul_k8s" / "playbooks" / "node-prepare.yaml")
    (tmp_path / "inventory.yaml").write_text(inventory_text)
    argv[argv.index("inventory.yaml")] = str(tmp_path / "inventory.yaml")
    program = str(Path(sys.executable).parent / "ansible-playbook")
    result = subprocess.run([program, *argv[1:], "--syntax-check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env, "ANSIBLE_NOCOLOR": "1"})
    assert result.returncode == 0, result.stdout + result.stderr

"""A node of an architecture the kit has no seccomp profile for: this machine under `setarch linux32`.

(uname -m then says i686 on x86_64, armv8l on aarch64: the kit has profiles for neither.)

prepare refuses it before changing anything (set zuul_k8s_seccomp: skip there);
cleanup removes the profile anyway and succeeds: removing needs no profile of
the kit's. Both through the CLI and ansible-runner, on this machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.nodes.helpers import CliRun, table_rows, zuul_k8s
from tests.tools import require_tool

pytestmark = pytest.mark.nodes
HOST = "odd-arch"


def inventory(tmp_path: Path, profile: Path) -> Path:
    setarch = require_tool("setarch")
    # Every module of the play runs under this interpreter: uname -m says ARCH32.
    python = tmp_path / "python-linux32"
    python.write_text(f'#!/bin/sh\nexec {setarch} linux32 {sys.executable} "$@"\n')
    python.chmod(0o755)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {HOST: {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(python),
        "zuul_k8s_selinux_module": "skip",
        "zuul_k8s_apparmor": "skip",
        "zuul_k8s_seccomp_profile_path": str(profile),
    }}}}))
    return path


def arch32() -> str:
    machine = subprocess.run([require_tool("setarch"), "linux32", "uname", "-m"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert machine not in ("x86_64", "aarch64"), machine
    return machine


def results(run: CliRun) -> dict[str, tuple[str, str]]:
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return {part: row for (host, part), row in table_rows(run.stdout).items() if host == HOST}


def test_prepare_refuses_the_node(tmp_path: Path) -> None:
    profile = tmp_path / "seccomp" / "profiles" / "zuul-executor.json"
    run = zuul_k8s("nodes", "prepare", "-i", str(inventory(tmp_path, profile)))
    assert run.rc == 1, run.stdout + run.stderr
    result, why = results(run)["seccomp"]
    assert result == "refused"
    assert f"no seccomp profile for architecture {arch32()} " in why and "zuul_k8s_seccomp: skip" in why
    assert not profile.parent.exists(), "prepare changed a node it refused"


def test_cleanup_removes_the_profile_and_succeeds(tmp_path: Path) -> None:
    profile = tmp_path / "seccomp" / "profiles" / "zuul-executor.json"
    profile.parent.mkdir(parents=True)
    profile.write_text("{}\n")  # e.g. put there by hand, or by an older kit
    inv = inventory(tmp_path, profile)

    checked = zuul_k8s("nodes", "cleanup", "--check", "-i", str(inv))
    assert checked.rc == 0, checked.stdout + checked.stderr
    assert results(checked)["seccomp"][0] == "would remove"
    assert profile.exists()

    run = zuul_k8s("nodes", "cleanup", "-i", str(inv))
    assert run.rc == 0, run.stdout + run.stderr
    found = results(run)
    assert found["seccomp"][0] == "removed"
    assert "(host)" not in found or found["(host)"][0] == "warning"
    assert not profile.exists()
    again = zuul_k8s("nodes", "cleanup", "-i", str(inv))
    assert again.rc == 0, again.stdout + again.stderr
    assert results(again)["seccomp"][0] == "absent"

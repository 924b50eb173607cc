"""The kit's Ansible modules: their decisions as pure functions, and runs against real tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.nodes.helpers import load_module, run_module
from tests.tools import require_tool
from zuul_k8s import profiles

selinux = load_module("zuul_selinux_module")
facts = load_module("zuul_node_facts")
apparmor = load_module("zuul_apparmor_profile")

V1 = "; version: 1.0.0\n(allow container_t proc_t (filesystem (mount)))\n"
V1_EDITED = "; version: 1.0.0\n(allow container_t devpts_t (filesystem (mount)))\n"
V2 = "; version: 2.0.0\n(allow container_t proc_t (filesystem (mount)))\n"


@pytest.mark.parametrize(
    ("wanted", "installed", "state", "action"),
    [
        (V1, None, "present", "installed"),
        (V1, V1, "present", "unchanged"),
        (V2, V1, "present", "upgraded"),
        (V1_EDITED, V1, "present", "replaced"),  # same version, other content: still replaced
        (None, V1, "absent", "removed"),
        (None, None, "absent", "absent"),
    ],
)
def test_selinux_module_decision(wanted: str | None, installed: str | None, state: str,
                                 action: str) -> None:
    assert selinux.decide(wanted, installed, state) == action


def test_selinux_module_version_comes_from_the_shipped_module() -> None:
    text = profiles.selinux_module_path().read_text()
    assert re.fullmatch(r"\d+\.\d+\.\d+", selinux.module_version(text) or "")
    assert selinux.module_version("(allow a b (c (d)))") is None


def test_selinux_module_refuses_content_without_version() -> None:
    result = run_module("zuul_selinux_module", {"name": "x", "content": "(allow a b (c (d)))"})
    assert result["failed"] and "version" in result["msg"]


def test_selinux_module_refuses_bad_name() -> None:
    result = run_module("zuul_selinux_module", {"name": "../x", "content": V1})
    assert result["failed"] and "letters, digits" in result["msg"]


def test_node_facts_plan_rules() -> None:
    on = {"enabled": True, "semodule": "/usr/sbin/semodule"}
    off = {"enabled": False, "semodule": "/usr/sbin/semodule"}
    missing = {"enabled": True, "semodule": None}
    assert facts.plan_selinux("auto", on) == {
        "action": "install", "reason": "SELinux is enabled", "reload": True}
    assert facts.plan_selinux("auto", off)["action"] == "skip"
    assert facts.plan_selinux("install", off)["reload"] is False
    assert facts.plan_selinux("skip", on)["action"] == "skip"
    refused = facts.plan_selinux("auto", missing)
    assert refused["action"] == "fail" and "install policycoreutils" in refused["reason"]
    aa = {"enabled": True, "parser": "/sbin/apparmor_parser", "abi4": True}
    assert facts.plan_apparmor("auto", aa)["file"] == "zuul-executor.abi4"
    assert facts.plan_apparmor("auto", {**aa, "abi4": False})["file"] == "zuul-executor"
    assert facts.plan_apparmor("auto", {**aa, "enabled": False})["action"] == "skip"
    assert facts.plan_apparmor("auto", {**aa, "parser": None})["action"] == "fail"
    assert facts.plan_seccomp("install", "s390x", ["x86_64"])["action"] == "fail"
    assert facts.plan_seccomp("install", "x86_64", ["x86_64"])["arch"] == "x86_64"


def test_node_facts_warnings() -> None:
    node = {
        "kernel": facts.kernel_facts("6.1.0-18-amd64"),
        "runtime": [{"name": "containerd", "version": "1.7.2", "ok": False,
                     "why": "containerd before 2.0 silently ignores hostUsers: false"}],
        "kubelet": {"user": True, "ids_needed": 65536 * 110,
                    "subuid": {"start": 100000, "count": 65536, "ok": False}, "subgid": None},
    }
    found = facts.warnings_for(node)
    assert any("older than 6.3" in w for w in found)
    assert any("containerd 1.7.2" in w for w in found)
    assert any("subuid range 100000:65536" in w for w in found)
    assert any("no /etc/subgid entry" in w for w in found)
    good = {"kernel": facts.kernel_facts("6.8.0"), "runtime": [], "kubelet": {"user": False}}
    assert facts.warnings_for(good) == []


def test_subid_range_by_name_or_uid() -> None:
    text = "alice:100000:65536\n999:65536:7208960\n"
    assert facts.subid_range(text, "kubelet", 999) == (65536, 7208960)
    assert facts.subid_range(text, "kubelet", 1000) is None


def test_node_facts_on_this_machine() -> None:
    """The module run for real; each fact checked against an independent probe."""
    result = run_module("zuul_node_facts", {"selinux": "install"})
    assert not result.get("failed"), result
    found = result["facts"]
    assert found["kernel"]["release"] == os.uname().release
    assert found["selinux"]["enabled"] == os.path.exists("/sys/fs/selinux/enforce")
    assert found["selinux"]["semodule"] == (shutil.which("semodule") or None)
    runc = shutil.which("runc")
    if runc:
        version = re.search(r"runc version ([0-9.]+)", subprocess.run(
            [runc, "--version"], capture_output=True, text=True).stdout)
        assert version is not None
        assert {"name": "runc", "version": version.group(1)}.items() <= next(
            r for r in found["runtime"] if r["name"] == "runc").items()
    assert result["changed"] is False
    assert set(result["plan"]) == {"selinux", "seccomp", "apparmor"}


@pytest.mark.nodes
def test_apparmor_module_installs_compiles_and_removes(tmp_path: Path) -> None:
    require_tool("apparmor_parser")
    dest = tmp_path / "apparmor.d" / "zuul-executor"
    content = profiles.apparmor_profile_path().read_text()
    args = {"name": "zuul-executor", "content": content, "dest": str(dest), "load": False}

    checked = run_module("zuul_apparmor_profile", args, check=True)
    assert (checked["changed"], checked["action"]) == (True, "installed")
    assert not dest.exists(), "check mode wrote the file"
    assert checked["diff"]["after"] == content

    first = run_module("zuul_apparmor_profile", args)
    assert (first["changed"], first["action"]) == (True, "installed")
    assert dest.read_text() == content
    second = run_module("zuul_apparmor_profile", args)
    assert (second["changed"], second["action"]) == (False, "unchanged")

    broken = run_module("zuul_apparmor_profile", {**args, "content": content + "}\n"})
    assert broken["failed"] and "apparmor_parser -Q -K" in broken["msg"]
    assert dest.read_text() == content, "a profile the parser rejects replaced the good one"

    removed = run_module("zuul_apparmor_profile", {**args, "state": "absent", "content": None})
    assert (removed["changed"], removed["action"]) == (True, "removed")
    assert not dest.exists()
    again = run_module("zuul_apparmor_profile", {**args, "state": "absent", "content": None})
    assert (again["changed"], again["action"]) == (False, "absent")


def test_apparmor_loaded_listing() -> None:
    listing = "zuul-executor (enforce)\nzuul-executor//x (enforce)\nother (complain)\n"
    assert apparmor.loaded("zuul-executor", listing)
    assert not apparmor.loaded("zuul", listing)
    assert not apparmor.loaded("zuul-executor", None)


@pytest.mark.parametrize("name", ["zuul_selinux_module", "zuul_node_facts",
                                  "zuul_apparmor_profile"])
def test_modules_document_themselves(name: str) -> None:
    import yaml

    module = load_module(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)

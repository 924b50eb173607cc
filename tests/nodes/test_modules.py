"""The kit's Ansible modules: their decisions as pure functions, and runs against real tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.nodes.conftest import KIT_MODULE
from tests.nodes.helpers import load_module, policy_file, run_module, semodule_list
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


def test_node_facts_removal_plan() -> None:
    """purpose=cleanup: what prepare installs, cleanup removes; no architecture is refused."""
    assert facts.plan_seccomp("install", "s390x", ["x86_64"], "cleanup")["action"] == "install"
    plan = {
        "selinux": facts.plan_selinux("auto", {"enabled": True, "semodule": "/usr/sbin/semodule"}),
        "seccomp": facts.plan_seccomp("install", "s390x", ["x86_64"], "cleanup"),
        "apparmor": facts.plan_apparmor("skip", {}),
        "other": facts.plan_selinux("auto", {"enabled": True, "semodule": None}),
    }
    assert facts.for_purpose(plan, "prepare") is plan
    removal = facts.for_purpose(plan, "cleanup")
    assert {part: entry["action"] for part, entry in removal.items()} == {
        "selinux": "remove", "seccomp": "remove", "apparmor": "skip", "other": "fail"}
    assert removal["selinux"]["reload"] is True  # the part's own keys stay


def test_node_facts_plan_for_an_unknown_architecture_on_this_machine() -> None:
    """Run for real with a profile list that lacks this machine's architecture."""
    other = ["riscv64"]
    prepare = run_module("zuul_node_facts", {"selinux": "skip", "apparmor": "skip",
                                             "seccomp_arches": other})
    assert prepare["plan"]["seccomp"]["action"] == "fail", prepare
    assert "no seccomp profile for architecture" in prepare["plan"]["seccomp"]["reason"]
    cleanup = run_module("zuul_node_facts", {"selinux": "skip", "apparmor": "skip",
                                             "seccomp_arches": other, "purpose": "cleanup"},
                         check=True)
    assert cleanup["plan"]["seccomp"]["action"] == "remove", cleanup
    assert cleanup["changed"] is False


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
    assert broken["changed"] is False  # refused before touching the file
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


MODULES = ["zuul_selinux_module", "zuul_node_facts", "zuul_apparmor_profile"]


@pytest.mark.parametrize("name", MODULES)
def test_modules_document_themselves(name: str) -> None:
    module = load_module(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert yaml.safe_load(module.EXAMPLES) and yaml.safe_load(module.RETURN)
    assert "action" in yaml.safe_load(module.RETURN) or name == "zuul_node_facts"


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_are_the_argument_spec(name: str) -> None:
    """What ansible-test's validate-modules checks: every option documented as the code takes it."""
    module = load_module(name)
    options = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.ARGUMENT_SPEC
    assert set(options) == set(spec)
    for option, arg in spec.items():
        documented = options[option]
        assert documented.get("description"), f"{name}: option {option} has no description"
        for key in ("type", "default", "choices", "elements"):
            assert documented.get(key) == arg.get(key), f"{name}: option {option}: {key} differs"
        assert bool(documented.get("required")) == bool(arg.get("required")), (
            f"{name}: option {option}: required differs")


def decisions(name: str) -> set[str]:
    """Every action the module's decide() returns, over all its kinds of input."""
    if name == "zuul_selinux_module":
        return {selinux.decide(w, i, state) for w in (V1, V2, V1_EDITED) for i in (None, V1)
                for state in ("present", "absent")} | {selinux.decide(None, None, "absent")}
    texts = (None, "a\n", "b\n")
    return {apparmor.decide(w, c, is_loaded, load) for w in texts for c in texts
            for is_loaded in (True, False) for load in (True, False)}


@pytest.mark.parametrize("name", ["zuul_selinux_module", "zuul_apparmor_profile"])
def test_documented_actions_are_the_decisions(name: str) -> None:
    """RETURN's action choices are what decide() returns, and the summary has a word for each."""
    from zuul_k8s.nodes.summary import ACTION_WORDS, Mode

    choices = set(yaml.safe_load(load_module(name).RETURN)["action"]["choices"])
    assert decisions(name) == choices
    plain = {"installed", "unchanged", "removed", "absent"}  # the summary's own words
    for mode in (Mode.PREPARE, Mode.CHECK, Mode.VERIFY):
        assert choices - plain <= set(ACTION_WORDS[mode]), mode


def test_selinux_module_says_what_to_do_without_semodule() -> None:
    result = run_module("zuul_selinux_module", {"name": "x", "content": V1,
                                                "semodule": "no-such-semodule"})
    assert result["failed"] and "semodule not found: install policycoreutils" in result["msg"]
    assert "zuul_k8s_selinux_module: skip" in result["msg"]


@pytest.mark.nodes
def test_selinux_module_check_mode_reads_the_store_and_changes_nothing(selinux_store: Path) -> None:
    """Check mode against the real store: the module is read back, nothing is installed."""
    content = profiles.selinux_module_path().read_text()
    before = policy_file().stat().st_mtime_ns
    args = {"name": KIT_MODULE, "content": content, "reload": False}
    result = run_module("zuul_selinux_module", args, check=True)
    assert not result.get("failed"), result
    assert (result["changed"], result["action"]) == (True, "installed")
    assert result["installed_version"] is None and result["version"] == "1.0.0"
    assert result["diff"]["before"] == "(not installed)\n"
    assert result["diff"]["after"].startswith("version 1.0.0, sha256 ")
    assert KIT_MODULE not in semodule_list()
    assert policy_file().stat().st_mtime_ns == before
    absent = run_module("zuul_selinux_module", {"name": KIT_MODULE, "state": "absent"}, check=True)
    assert (absent["changed"], absent["action"]) == (False, "absent")


def test_selinux_module_failure_message_puts_the_hint_on_the_first_line() -> None:
    """The summary table shows a failure's first line: semodule's cause and the fix must both be there."""
    output = ("Failed to resolve allow statement at /var/lib/selinux/x/cil:18\n"
              "Failed to resolve AST\nsemodule:  Failed!\n")
    first, *rest = selinux.failure_message(output).splitlines()
    assert first.startswith("semodule failed: Failed to resolve allow statement at")
    assert first.endswith("container_t comes with container-selinux, or refpolicy's container module)")
    assert rest == ["Failed to resolve AST", "semodule:  Failed!"]
    assert selinux.failure_message("") == "semodule failed: no output"


@pytest.mark.nodes
def test_selinux_module_with_an_unknown_type_fails_with_the_hint(selinux_store: Path) -> None:
    """A real semodule refusing a module (a type the policy lacks), read as a user reads it."""
    content = "; version: 1.0.0\n(allow container_t zuul_k8s_no_such_type_t (filesystem (mount)))\n"
    before = policy_file().stat().st_mtime_ns
    result = run_module("zuul_selinux_module", {"name": "zuul_k8s_test_unresolved",
                                                "content": content, "reload": False})
    assert result["failed"] and result["changed"] is False, result  # the store is as it was
    first = result["msg"].splitlines()[0]
    assert "Failed to resolve allow statement" in first and "container-selinux" in first
    assert "zuul_k8s_test_unresolved" not in semodule_list()
    assert policy_file().stat().st_mtime_ns == before


def test_apparmor_module_refuses_content_for_another_profile(tmp_path: Path) -> None:
    """A name the content does not declare would never be seen loaded: changed on every run."""
    require_tool("apparmor_parser")
    content = profiles.apparmor_profile_path().read_text()
    dest = tmp_path / "zuul-other"
    result = run_module("zuul_apparmor_profile", {"name": "zuul-other", "content": content,
                                                  "dest": str(dest), "load": False})
    assert result["failed"]
    assert "declares no profile named zuul-other (it declares: zuul-executor)" in result["msg"]
    assert not dest.exists()
    assert apparmor.declared_names(profiles.apparmor_profile_path(abi4=True).read_text()) == [
        "zuul-executor"]

"""`zuul-k8s nodes` on this machine, through ansible-runner, against the real SELinux store.

One pass through the life of a node: verify (missing), prepare --check
(changes nothing), prepare (installs; sesearch finds both rules in the built
policy), prepare again (no task changed; the policy file is the first run's,
so no `semodule -i` ran), verify (ok), cleanup
(removed). SELinux is not enabled in this kernel, so the module goes into the
store without reloading (zuul_k8s_selinux_module: install); AppArmor is
written and compiled, not loaded, likewise.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.nodes.conftest import KIT_MODULE
from tests.nodes.helpers import (
    CliRun,
    policy_file,
    semodule_list,
    sesearch_mount,
    table_rows,
    zuul_k8s,
)
from tests.tools import require_tool
from zuul_k8s import profiles

pytestmark = pytest.mark.nodes
HOST = "this-node"
PARTS = ("selinux", "seccomp", "apparmor")


class Life:
    """The runs, and what the node looked like right after each."""

    def __init__(self) -> None:
        self.runs: dict[str, CliRun] = {}
        self.listed: dict[str, bool] = {}
        self.rules: dict[str, str] = {}
        self.files: dict[str, tuple[bool, bool]] = {}
        self.policy: dict[str, tuple[int, int, int]] = {}  # the built policy's inode, mtime, size
        self.installed_is_kits = False


@pytest.fixture(scope="module")
def life(selinux_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    require_tool("apparmor_parser")
    root = tmp_path_factory.mktemp("node")
    seccomp_path = root / "kubelet" / "seccomp" / "profiles" / "zuul-executor.json"
    apparmor_dir = root / "apparmor.d"
    inventory = root / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {HOST: {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "zuul_k8s_selinux_module": "install",
        "zuul_k8s_apparmor": "install",
        "zuul_k8s_apparmor_dir": str(apparmor_dir),
        "zuul_k8s_seccomp_profile_path": str(seccomp_path),
    }}}}))
    state = Life()
    steps = [
        ("verify-before", ("verify",)),
        ("check", ("prepare", "--check")),
        ("first", ("prepare",)),
        ("second", ("prepare",)),
        ("verify-after", ("verify",)),
        ("cleanup", ("cleanup",)),
        ("cleanup-again", ("cleanup",)),
    ]
    for name, args in steps:
        state.runs[name] = zuul_k8s("nodes", *args, "-i", str(inventory))
        state.listed[name] = KIT_MODULE in semodule_list()
        policy = policy_file()
        stat = policy.stat()
        state.policy[name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        state.rules[name] = sesearch_mount("proc_t", policy) + sesearch_mount("devpts_t", policy)
        state.files[name] = (seccomp_path.exists(), (apparmor_dir / "zuul-executor").exists())
        if name == "first":
            extracted = root / "extracted"
            extracted.mkdir()
            subprocess.run(["semodule", "-E", KIT_MODULE, "-c"], cwd=extracted, check=True,
                           capture_output=True)
            state.installed_is_kits = (
                seccomp_path.read_bytes() == profiles.seccomp_profile_path().read_bytes()
                and (apparmor_dir / "zuul-executor").read_bytes()
                == profiles.apparmor_profile_path().read_bytes()
                and (extracted / f"{KIT_MODULE}.cil").read_bytes()
                == profiles.selinux_module_path().read_bytes()
            )
    yield state


def results(run: CliRun) -> dict[str, str]:
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    rows = table_rows(run.stdout).items()
    return {part: row[0] for (host, part), row in rows if host == HOST and part in PARTS}


def test_verify_reports_missing_parts_and_exits_1(life: Life) -> None:
    run = life.runs["verify-before"]
    assert run.rc == 1, run.stdout + run.stderr
    assert results(run) == {"selinux": "missing", "seccomp": "missing", "apparmor": "missing"}


def test_check_mode_changes_nothing(life: Life) -> None:
    run = life.runs["check"]
    assert life.policy["check"] == life.policy["verify-before"], "check mode rebuilt the policy"
    assert run.rc == 0, run.stdout + run.stderr
    assert results(run) == {"selinux": "would install", "seccomp": "would install",
                            "apparmor": "would install"}
    assert not life.listed["check"]
    assert life.files["check"] == (False, False)
    assert "allow container_t" not in life.rules["check"]


def test_first_run_installs_and_the_policy_holds_both_rules(life: Life) -> None:
    run = life.runs["first"]
    assert run.rc == 0, run.stdout + run.stderr
    assert results(run) == {"selinux": "installed", "seccomp": "installed",
                            "apparmor": "installed"}
    assert life.listed["first"]
    assert "allow container_t proc_t:filesystem mount;" in life.rules["first"]
    assert "allow container_t devpts_t:filesystem mount;" in life.rules["first"]
    assert life.files["first"] == (True, True)
    assert life.installed_is_kits, "the installed profiles are not the kit's, byte for byte"
    progress = run.stdout.splitlines()
    assert any(line.split()[:3] == [HOST, "changed", "selinux:"] for line in progress)


def test_second_run_changes_nothing(life: Life) -> None:
    run = life.runs["second"]
    assert run.rc == 0, run.stdout + run.stderr
    assert results(run) == {"selinux": "unchanged", "seccomp": "unchanged",
                            "apparmor": "unchanged"}
    progress = [line.split() for line in run.stdout.splitlines() if line.startswith(HOST + " ")]
    assert progress, run.stdout
    assert [words for words in progress if words[1] == "changed"] == [], "a task changed"
    assert [HOST, "ok", "selinux:", "install", "module:", "unchanged"] in progress


def test_second_run_does_not_rebuild_the_policy(life: Life) -> None:
    """The speed lever (testing-here.md): a current module costs no `semodule -i`.

    Every `semodule -i` writes a new policy file; the first run's did (so this
    measure can see a rebuild), the second run's must not have.
    """
    assert life.policy["first"] != life.policy["check"], "the first run did not rebuild the policy"
    assert life.policy["second"] == life.policy["first"], "the second run rebuilt the policy"
    assert life.policy["verify-after"] == life.policy["first"], "verify rebuilt the policy"


def test_verify_passes_once_prepared(life: Life) -> None:
    run = life.runs["verify-after"]
    assert run.rc == 0, run.stdout + run.stderr
    assert results(run) == {"selinux": "ok", "seccomp": "ok", "apparmor": "ok"}


def test_cleanup_removes_everything_then_has_nothing_to_do(life: Life) -> None:
    run = life.runs["cleanup"]
    assert run.rc == 0, run.stdout + run.stderr
    assert results(run) == {"selinux": "removed", "seccomp": "removed", "apparmor": "removed"}
    assert not life.listed["cleanup"]
    assert "allow container_t" not in life.rules["cleanup"]
    assert life.files["cleanup"] == (False, False)
    again = life.runs["cleanup-again"]
    assert again.rc == 0
    assert results(again) == {"selinux": "absent", "seccomp": "absent", "apparmor": "absent"}

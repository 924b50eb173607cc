"""`zuul-k8s selftest --local` on the real runtime: podman with runc, bwrap, this kernel.

The kit's pod passes every check at uid 10001 and at uid 0; each broken variant
fails with the right diagnosis; every report validates against its schema.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.core.helpers import config
from tests.tools import REPO, fixture, require_tool
from zuul_k8s.render import render
from zuul_k8s.selftest import PROBE_PATH, probe, report
from zuul_k8s.workloads import pod_template

pytestmark = pytest.mark.runtime


def selftest(*args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """The CLI as a fresh process, with JSON output: (exit code, document, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--local", "-o", "json", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )
    assert "Traceback" not in result.stderr, result.stderr
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    if document:
        report.validate(document["report"], "the probe's report")
    return result.returncode, document, result.stderr


def executor_manifest(tmp_path: Path, uid: int = 10001, pod: dict[str, Any] | None = None,
                      container: dict[str, Any] | None = None) -> Path:
    """The kit's rendered executor objects, with pod or container securityContext keys
    changed (None deletes; `hostUsers` is a pod spec field)."""
    user = {"uid": uid, "gid": uid, "fsGroup": uid}
    objects = copy.deepcopy(render(config(user=user)))
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    template = pod_template(workload)
    assert template is not None
    for key, value in (pod or {}).items():
        target = template.spec if key == "hostUsers" else template.spec["securityContext"]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    context = template.spec["containers"][0]["securityContext"]
    for key, value in (container or {}).items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    path = tmp_path / "executor.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return path


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {check["id"]: check["status"] for check in document["report"]["checks"]}


def diagnosis_ids(document: dict[str, Any]) -> list[str]:
    return [d["id"] for d in document["diagnoses"]]


def assert_diagnosed(document: dict[str, Any], expected: list[str], bwrap_line: str) -> None:
    assert document["ok"] is False
    assert diagnosis_ids(document) == expected
    failed = {c for c, s in statuses(document).items() if s == "fail"}
    assert failed == {c for d in document["diagnoses"] for c in d["checks"]}
    assert any(bwrap_line in line for d in document["diagnoses"] for line in d["evidence"])


# --- the kit's settings pass ---------------------------------------------------------


@pytest.mark.parametrize("uid", [10001, 0])
def test_kit_pod_passes_every_check(zuul_image: str, tmp_path: Path, uid: int) -> None:
    kit_config = tmp_path / "zuul-k8s.yaml"
    kit_config.write_text(yaml.safe_dump({"user": {"uid": uid, "gid": uid, "fsGroup": uid}}))
    code, document, stderr = selftest("-c", str(kit_config), "--image", zuul_image)
    assert code == 0, stderr
    assert set(statuses(document).values()) == {"pass"}, statuses(document)
    assert document["diagnoses"] == []
    environment = document["report"]["environment"]
    assert environment["uid"] == uid
    assert environment["own_user_namespace"] is True
    assert environment["no_new_privs"] is True
    assert environment["cap_bnd"] == ([] if uid else ["SETFCAP"])
    capabilities = next(c for c in document["report"]["checks"]
                        if c["id"] == "isolation.capabilities")
    # A root executor's jobs keep SETFCAP in their own user namespace: a warning.
    assert (capabilities["warning"] is None) == (uid != 0)
    nested = next(c for c in document["report"]["checks"] if c["id"] == "isolation.nested-userns")
    # --disable-userns spends the sandbox's one user namespace: the job's unshare gets ENOSPC.
    assert "refused (ENOSPC)" in nested["message"], nested
    assert nested["stderr"] == "unshare: unshare failed: No space left on device"


def test_built_in_config_passes_in_an_image_without_zuul(base_image: str) -> None:
    """`-c` defaults to the built-in example: its pod, rendered, in an image without Zuul."""
    code, document, stderr = selftest("--image", base_image)
    assert code == 0, stderr
    checks = statuses(document)
    assert checks.pop("zuul.bwrap") == "skip"
    assert set(checks.values()) == {"pass"}
    assert document["podman"]["image"] == base_image
    assert "--uidmap" in document["podman"]["flags"]


def test_text_output_is_a_table(base_image: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--local", "-f",
         str(executor_manifest(tmp_path, container={"procMount": None})), "--image", base_image],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("podman flags: --uidmap 0:2097152:65536")
    assert lines[1].split() == ["CHECK", "RESULT", "DETAIL"]
    assert next(line for line in lines if line.startswith("env.proc")).split()[1:3] == [
        "FAIL", "[1]"]
    assert "[1] /proc is masked (proc-masked)" in result.stdout
    assert "fix:      set the executor container's securityContext.procMount: Unmasked" in (
        result.stdout)


# --- each broken setting fails with its diagnosis ------------------------------------


def test_masked_proc(zuul_image: str, tmp_path: Path) -> None:
    manifest = executor_manifest(tmp_path, container={"procMount": "Default"})
    code, document, _ = selftest("-f", str(manifest), "--image", zuul_image)
    assert code == 1
    assert_diagnosed(document, ["proc-masked"], "Can't mount proc on /newroot/proc")
    assert statuses(document)["env.proc"] == "fail"
    masked = document["report"]["environment"]["proc_masked_paths"]
    assert {"/proc/sys", "/proc/acpi"} <= set(masked)  # what podman masks here
    assert set(masked) <= set(probe.MASKED_PROC_PATHS) | set(probe.READONLY_PROC_PATHS)
    assert statuses(document)["zuul.bwrap"] == "fail"


def test_no_user_namespace(base_image: str, tmp_path: Path) -> None:
    # procMount: Unmasked is invalid without hostUsers: false, so it goes too.
    manifest = executor_manifest(tmp_path, pod={"hostUsers": None}, container={"procMount": None})
    code, document, _ = selftest("-f", str(manifest), "--image", base_image)
    assert code == 1
    assert_diagnosed(document, ["no-userns"], "Can't mount proc on /newroot/proc")
    assert document["report"]["environment"]["uid_map"] == [[0, 0, 4294967295]]


def test_root_without_setfcap(zuul_image: str, tmp_path: Path) -> None:
    manifest = executor_manifest(tmp_path, uid=0, container={"capabilities": {"drop": ["ALL"]}})
    code, document, _ = selftest("-f", str(manifest), "--image", zuul_image)
    assert code == 1
    assert_diagnosed(document, ["root-without-setfcap"], "setting up uid map: Operation not permitted")


def test_root_with_crio_defaults_lacks_setfcap(base_image: str, tmp_path: Path) -> None:
    """CRI-O's defaults hold no SETFCAP; containerd's do (docs/testing-here.md)."""
    manifest = executor_manifest(tmp_path, uid=0, container={"capabilities": None})
    code, document, _ = selftest("-f", str(manifest), "--image", base_image,
                                 "--runtime-default", "crio")
    assert code == 1
    assert_diagnosed(document, ["root-without-setfcap"], "setting up uid map")
    # containerd's defaults hold SETFCAP, so bwrap maps root; but the jobs keep the
    # whole default set (NET_RAW, MKNOD, ...), which only SETFCAP alone would excuse.
    code, document, _ = selftest("-f", str(manifest), "--image", base_image,
                                 "--runtime-default", "containerd")
    assert code == 1
    assert diagnosis_ids(document) == ["root-job-capabilities"]
    assert {c for c, s in statuses(document).items() if s == "fail"} == {"isolation.capabilities"}


def test_root_with_crio_defaults_and_setfcap_fails_capabilities(base_image: str,
                                                                tmp_path: Path) -> None:
    """uid 0, CRI-O's defaults plus SETFCAP: the uid map works, and the jobs keep CHOWN,
    DAC_OVERRIDE, ... inside the sandbox: a failure, not the SETFCAP-only warning."""
    manifest = executor_manifest(tmp_path, uid=0, container={"capabilities": {"add": ["SETFCAP"]}})
    code, document, _ = selftest("-f", str(manifest), "--image", base_image,
                                 "--runtime-default", "crio")
    assert code == 1
    checks = {c["id"]: c for c in document["report"]["checks"]}
    assert {i for i, c in checks.items() if c["status"] == "fail"} == {"isolation.capabilities"}
    assert checks["bwrap.executor"]["status"] == "pass"  # SETFCAP present: root is mapped
    message = checks["isolation.capabilities"]["message"]
    assert "more than SETFCAP: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL" in message, message
    assert "drop ALL and add only SETFCAP, or run as uid 10001" in message
    [diagnosis] = document["diagnoses"]
    assert diagnosis["id"] == "root-job-capabilities"
    assert diagnosis["checks"] == ["isolation.capabilities"]
    assert "add: [SETFCAP]" in diagnosis["fix"] and "`user.uid: 10001`" in diagnosis["fix"]


@pytest.mark.parametrize("profile", ["RuntimeDefault", "Localhost"])
def test_runtime_default_seccomp_fails_where_the_kits_profile_passes(
        zuul_image: str, tmp_path: Path, profile: str) -> None:
    seccomp = {"type": profile}
    if profile == "Localhost":
        seccomp["localhostProfile"] = "profiles/zuul-executor.json"
    manifest = executor_manifest(tmp_path, pod={"seccompProfile": seccomp})
    moby = fixture("seccomp", "moby-default.json")
    code, document, _ = selftest("-f", str(manifest), "--image", zuul_image,
                                 "--runtime-default-seccomp", str(moby))
    assert document["report"]["environment"]["seccomp"] == "filter"
    if profile == "Localhost":
        assert code == 0
        assert set(statuses(document).values()) == {"pass"}
    else:
        assert code == 1
        assert_diagnosed(document, ["seccomp-refuses-namespaces"],
                         "No permissions to create new namespace")


def test_image_without_bwrap(no_bwrap_image: str, tmp_path: Path) -> None:
    code, document, _ = selftest("-f", str(executor_manifest(tmp_path)), "--image", no_bwrap_image)
    assert code == 1
    assert diagnosis_ids(document) == ["bwrap-missing"]
    assert document["report"]["environment"]["bwrap_path"] is None
    skipped = {c for c, s in statuses(document).items() if s == "skip"}
    assert {"bwrap.userns", "bwrap.executor", "isolation.pid", "zuul.bwrap"} <= skipped


# --- the runner itself -----------------------------------------------------------


def test_a_missing_image_is_a_usage_error(podman_env: None) -> None:
    code, _, stderr = selftest("--image", "localhost/zuul-k8s-no-such-image:0")
    assert code == 2
    assert "localhost/zuul-k8s-no-such-image:0: not in local storage" in stderr


def _container_exists(name: str) -> bool:
    return subprocess.run(["podman", "container", "exists", name]).returncode == 0


def _podman_rm_child(parent: int) -> int | None:
    """The pid of `podman rm` among the processes below `parent`, if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and argv[1:3] == [b"rm", b"--force"]:
            return int(entry.name)
    return None


def _running(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(("signum", "again"), [
    (signal.SIGINT, None),
    (signal.SIGTERM, None),
    # Ctrl-C twice: the second lands while `podman rm` runs, and must not stop it.
    (signal.SIGINT, signal.SIGINT),
    (signal.SIGTERM, signal.SIGINT),
])
def test_interrupt_removes_the_container(slow_image: str, signum: int,
                                         again: int | None) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--local", "--image", slow_image],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert process.stderr is not None
        line = ""
        while "running the probe in container" not in line:
            line = process.stderr.readline()
            assert line, "the CLI ended before starting the probe"
        name = line.split("container ")[1].split()[0]
        deadline = time.monotonic() + 60
        while not _container_exists(name):
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.2)
        process.send_signal(signum)
        if again is not None:
            deadline = time.monotonic() + 30
            remover = None
            while remover is None and process.poll() is None:
                assert time.monotonic() < deadline, "podman rm never started"
                remover = _podman_rm_child(process.pid)
            assert remover is not None, "the CLI ended before `podman rm` was seen"
            process.send_signal(again)
            process.send_signal(again)
            # The signals came while it ran: else this test proves nothing.
            assert _running(remover), "podman rm ended before the second signal"
        assert process.wait(timeout=60) == 130
        assert not _container_exists(name)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_probe_runs_outside_any_container() -> None:
    """Run directly here (root, the node's namespaces), the probe still reports, and says so."""
    require_tool("bwrap")
    result = subprocess.run([sys.executable, str(PROBE_PATH)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    probe_report = report.parse(result.stdout, "probe on the host")
    checks = {c["id"]: c for c in probe_report["checks"]}
    assert checks["env.userns"]["status"] == "fail"
    assert checks["bwrap.executor"]["status"] == "pass"
    assert probe_report["environment"]["uid"] == 0
    assert probe_report["environment"]["own_user_namespace"] is False
    # Root on the host: the job keeps every capability, which is no SETFCAP-only warning.
    assert checks["isolation.capabilities"]["status"] == "fail"
    assert "more than SETFCAP: " in checks["isolation.capabilities"]["message"]
    assert checks["isolation.nested-userns"]["status"] == "pass"
    assert "refused (ENOSPC)" in checks["isolation.nested-userns"]["message"]

"""`zuul-k8s selftest --zuul`: the zuul-k8s-selftest job in a real build, on the kit's executor.

A Zuul of its own (tests/e2e/harness.py) whose one untrusted project holds the
job exactly as `zuul-k8s selftest --write-job` writes it, plus a `- project:`
stanza running it in the `manual` pipeline. One executor at a time, started
from the kit's render (the e2e's podman stand-in for the pod), so every build
lands on the executor under test; the command line is the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import harness, tenant, tools
from zuul_k8s import zuuljob
from zuul_k8s.selftest import jobcheck
from zuul_k8s.selftest.podman import RUNTIME_DEFAULT_CAPABILITIES

pytestmark = pytest.mark.e2e
PROJECT = "zuul-k8s-selftest"
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300
LOAD = "load_multiplier=100\n"


def project_files() -> dict[str, str]:
    """The written job, and the stanza a user adds to run it in a pipeline they can enqueue into."""
    files = {name: content.decode() for name, content in zuuljob.files().items()}
    files["zuul.d/project.yaml"] = (f"- project:\n    {tenant.PIPELINE}:\n      jobs:\n"
                                    f"        - {zuuljob.JOB_NAME}\n")
    return files


@pytest.fixture(scope="module")
def selftest_zuul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Zuul]:
    tools.require()
    workdir = tmp_path_factory.mktemp("e2e-selftest-job")
    with tools.podman_conf(workdir / "podman"), \
            harness.running(workdir / "zuul", {PROJECT: project_files()}) as zuul:
        yield zuul


@pytest.fixture(scope="module")
def token_file(selftest_zuul: harness.Zuul, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(selftest_zuul.token())
    path.chmod(0o600)
    return path


def selftest(zuul: harness.Zuul, token: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it against zuul-web."""
    return subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--zuul", zuul.web_url, "--tenant",
         tenant.TENANT, "--token-file", str(token), "--timeout", str(TIMEOUT), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT * 3)


class Executor:
    """One executor for the duration of a `with`: started from the render, removed after."""

    def __init__(self, zuul: harness.Zuul, overrides: Mapping[str, Any] | None = None,
                 extra_conf: str = "", extra_flags: Sequence[str] = ()) -> None:
        self.zuul, self.overrides = zuul, overrides
        self.extra_conf, self.extra_flags = extra_conf, extra_flags

    def __enter__(self) -> Any:
        # This machine's 2 cores are shared with compilers: a load average above Zuul's
        # default limit (2.5 per core) makes the executor stop accepting builds.
        self.pod = self.zuul.start_executor(self.overrides, extra_conf=LOAD + self.extra_conf,
                                            extra_flags=self.extra_flags)
        return self.pod

    def __exit__(self, *exc: object) -> None:
        self.pod.remove()


def statuses(table: str) -> dict[str, str]:
    """check id -> RESULT column of the printed table."""
    ids = {c[0] for c in jobcheck.CHECKS}
    found = {}
    for line in table.splitlines():
        words = line.split()
        if words and words[0] in ids:
            found[words[0]] = " ".join(words[1:3]) if words[1] == "FAIL" else words[1]
    return found


def show(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_with_the_kits_settings_every_check_passes(selftest_zuul: harness.Zuul,
                                                   token_file: Path) -> None:
    with Executor(selftest_zuul):
        result = selftest(selftest_zuul, token_file)
        print(result.stdout)
        assert result.returncode == 0, show(result)
        seen = statuses(result.stdout)
        assert set(seen) == {c[0] for c in jobcheck.CHECKS}, show(result)
        assert set(seen.values()) <= {"pass", "pass (!)"}, show(result)
        assert "0 fail" in result.stdout
        assert selftest_zuul.token() not in result.stdout + result.stderr

        counted = selftest(selftest_zuul, token_file, "--count", "2", "-o", "json")
        assert counted.returncode == 0, show(counted)
        document = json.loads(counted.stdout)
        assert document["ok"] is True and len(document["builds"]) == 2
        assert len({b["uuid"] for b in document["builds"]}) == 2
        for build in document["builds"]:
            assert build["report"]["kind"] == "job"
            assert build["report"]["build"]["context"] == "untrusted"
            assert build["executor"] and build["result"] == "SUCCESS"

        played = playbook(selftest_zuul, token_file)
        assert played.returncode == 0, played.stdout + played.stderr
        assert "18 checks pass" in played.stdout, played.stdout


def playbook(zuul: harness.Zuul, token: Path) -> subprocess.CompletedProcess[str]:
    """playbooks/selftest.yaml in its zuul-web mode, with the real ansible-playbook."""
    binary = Path(sys.executable).parent / "ansible-playbook"
    argv = [str(binary), "-i", "localhost,", str(ROOT / "playbooks" / "selftest.yaml"),
            "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"zuul_url={zuul.web_url}",
            "-e", f"zuul_tenant={tenant.TENANT}", "-e", f"zuul_token_file={token}",
            "-e", f"build_timeout={TIMEOUT}"]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT * 2)


def test_a_root_executor_with_the_runtimes_default_capabilities_is_caught(
        selftest_zuul: harness.Zuul, token_file: Path) -> None:
    """user.uid 0, and the container keeps containerd's default set instead of drop ALL + SETFCAP."""
    defaults = ",".join(RUNTIME_DEFAULT_CAPABILITIES["containerd"])
    with Executor(selftest_zuul, {"user": {"uid": 0, "gid": 0, "fsGroup": 0}},
                  extra_flags=[f"--cap-add={defaults}"]):
        result = selftest(selftest_zuul, token_file)
    print(result.stdout)
    assert result.returncode == 1, show(result)
    assert statuses(result.stdout)["build.capabilities"] == "FAIL [1]", show(result)
    assert "(root-job-capabilities)" in result.stdout
    assert "fix:      in the executor container's securityContext.capabilities drop ALL" in result.stdout


def test_zuul_conf_in_untrusted_ro_paths_is_caught(selftest_zuul: harness.Zuul,
                                                    token_file: Path) -> None:
    """An operator adds the executor's config dir to untrusted_ro_paths: zuul.conf becomes visible."""
    with Executor(selftest_zuul, extra_conf="untrusted_ro_paths=/etc/zuul\n"):
        result = selftest(selftest_zuul, token_file)
    print(result.stdout)
    assert result.returncode == 1, show(result)
    assert statuses(result.stdout)["build.zuul-conf"].startswith("FAIL"), show(result)
    assert "(executor-paths-exposed)" in result.stdout
    assert "`[executor] untrusted_ro_paths`" in result.stdout


TOKEN = "eyJhbGciOiJSUzI1NiJ9.fake-service-account-token.zuul-k8s-e2e"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_a_service_account_token_in_the_pod(selftest_zuul: harness.Zuul, token_file: Path,
                                            tmp_path: Path) -> None:
    """A token mounted in the executor pod, as the kubelet mounts one with automounting on.

    bwrap binds only /usr, /lib, /bin, /sbin and a few /etc files, so the token is not
    in a build's sandbox: the job reports it out of reach. Once zuul.conf binds its
    directory into builds (untrusted_ro_paths), the job finds it and says so.
    """
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    mount = [f"--volume={token}:{TOKEN_DIR}/token:ro"]
    with Executor(selftest_zuul, extra_flags=mount) as pod_:
        shown = pod_.exec("cat", f"{TOKEN_DIR}/token")
        assert shown.stdout == TOKEN, "the token is in the executor's container"
        hidden = selftest(selftest_zuul, token_file)
    print(hidden.stdout)
    assert hidden.returncode == 0, show(hidden)
    assert statuses(hidden.stdout)["build.sa-token"] == "pass"

    with Executor(selftest_zuul, extra_conf=f"untrusted_ro_paths={TOKEN_DIR}\n", extra_flags=mount):
        exposed = selftest(selftest_zuul, token_file)
    print(exposed.stdout)
    assert exposed.returncode == 1, show(exposed)
    assert statuses(exposed.stdout)["build.sa-token"].startswith("FAIL"), show(exposed)
    assert "(job-sees-token)" in exposed.stdout
    assert TOKEN not in exposed.stdout + exposed.stderr, "the token's value is never printed"


def test_bad_input_is_one_clear_message_and_exit_2(selftest_zuul: harness.Zuul,
                                                   token_file: Path, tmp_path: Path) -> None:
    bad_token = tmp_path / "bad"
    bad_token.write_text(selftest_zuul.token()[:-6] + "AAAAAA")
    cases = [
        (["--tenant", "nosuch"], "tenant 'nosuch' does not exist"),
        (["--token-file", str(bad_token)], "zuul-web refused the token (401"),
        (["--project", "nosuch"], "tenant e2e has no such project"),
        (["--pipeline", "nosuch"], "does not run zuul-k8s-selftest in pipeline nosuch"),
    ]
    for extra, message in cases:
        result = selftest(selftest_zuul, token_file, *extra)
        assert result.returncode == 2, show(result)
        assert message in result.stderr, show(result)
        assert "Traceback" not in result.stderr
    wrong_url = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--zuul", selftest_zuul.web_url + "/nothere",
         "--tenant", tenant.TENANT, "--token-file", str(token_file)],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert wrong_url.returncode == 2 and "not with JSON" in wrong_url.stderr, show(wrong_url)


def test_a_job_that_never_starts_is_exit_2_and_leaves_no_item_behind(
        selftest_zuul: harness.Zuul, token_file: Path) -> None:
    """No executor is running between the other tests: the build cannot start."""
    result = selftest(selftest_zuul, token_file, "--timeout", "20")
    assert result.returncode == 2, show(result)
    assert "waits for an executor" in result.stderr and "the item was dequeued" in result.stderr, show(result)

    def queued() -> list[Any]:
        status = selftest_zuul.api(f"/api/tenant/{tenant.TENANT}/status")
        return [item for p in status["pipelines"] for q in p["change_queues"] for h in q["heads"]
                for item in h]

    deadline = time.monotonic() + 60
    while queued() and time.monotonic() < deadline:
        time.sleep(1)
    assert queued() == [], "the dequeue took the item out"

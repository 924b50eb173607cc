"""The job's checker for real: Zuul's own wrapper (zuul-bwrap, zuul 14.3.0) in the kit's pod.

Faster than a whole Zuul (tests/e2e/test_selftest_job.py) and able to weaken
what a running executor cannot be asked to: the e2e executor image runs under
podman with the kit's rendered pod settings (the self-test's translation),
the Secrets laid where the kit mounts them, a state dir with another build, a
git cache and a listening command socket, and `zuul-bwrap` starts the checker
with the binds zuul-executor gives an untrusted playbook (its work, home,
trusted/untrusted and Ansible dirs). Each weakening is one zuul.conf path list
or pod setting; each must be caught with the right diagnosis.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import podman_env  # noqa: F401  (the fixture)
from tests.tools import require_tool
from zuul_k8s import zuuljob
from zuul_k8s.config import load_config, parse
from zuul_k8s.profiles import seccomp_root
from zuul_k8s.render import render
from zuul_k8s.selftest import report as report_module
from zuul_k8s.selftest.diagnosis import diagnose
from zuul_k8s.selftest.local import find_executor, host_lsms
from zuul_k8s.selftest.podman import Options, translate

pytestmark = pytest.mark.runtime

STATE = "/var/lib/zuul"
BUILD = "5f1c0ffee0000000000000000000b001"
JOB = f"{STATE}/builds/{BUILD}"
OTHER = f"{STATE}/builds/another-build"
PLAYBOOK = f"{JOB}/untrusted/project_0/selftest/playbooks/zuul-k8s-selftest"
OPTIONS = Options(runtime="containerd", seccomp_root=seccomp_root())


@pytest.fixture(scope="module")
def executor_image(podman_env: None) -> str:  # noqa: F811
    """The e2e's image of the upstream zuul-executor (zuul 14.3.0, bwrap, dumb-init)."""
    for tool in ("debootstrap", "chroot", "unshare"):
        require_tool(tool)
    from tests.e2e import image

    return image.build()


@pytest.fixture(scope="module")
def job_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job as `zuul-k8s selftest --write-job` writes it, readable by the pod's user."""
    directory = tmp_path_factory.mktemp("job", numbered=True)
    zuuljob.write(directory)
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    directory.parent.chmod(0o755)
    directory.parent.parent.chmod(0o755)
    return directory


def secrets(tmp_path: Path, uid: int) -> list[str]:
    """Fake Secrets at the job's default paths (where the kit mounts them), owned as the pod's user."""
    paths = zuuljob_paths()
    flags = []
    host_uid = OPTIONS.userns_base + uid
    for key in ("zuul_conf", "ssh_key", "tls_key"):
        source = tmp_path / key
        source.write_text(f"fake {key}, never to be seen from a build\n")
        os.chown(source, host_uid, host_uid)
        source.chmod(0o400)
        flags += ["--volume", f"{source}:{paths[key]}:ro"]
    tmp_path.chmod(0o711)
    return flags


def zuuljob_paths() -> dict[str, str]:
    import yaml

    [job] = [d["job"] for d in yaml.safe_load(zuuljob.files()[zuuljob.JOB_FILE]) if "job" in d]
    paths: dict[str, str] = job["vars"]["zuul_k8s_selftest_paths"]
    return paths


def pod_flags(overrides: dict[str, Any] | None = None, drop_capabilities: bool = False) -> tuple[list[str], int]:
    """The kit's rendered executor pod as podman flags (and its uid); overrides go into the config."""
    config = load_config(None)
    if overrides:
        from tests.e2e.executor import merged
        from zuul_k8s import config as kit_config
        from zuul_k8s import yamlio

        config = parse(merged(yamlio.load_one(str(kit_config.EXAMPLE)), overrides), "test config")
    executor = find_executor(render(config), "render")
    container = executor.container
    if drop_capabilities:  # the runtime's default set: what a pod without `capabilities` gets
        container = {**container, "securityContext": {
            k: v for k, v in container["securityContext"].items() if k != "capabilities"}}
    apparmor, selinux = host_lsms()
    options = Options(runtime="containerd", seccomp_root=seccomp_root(), host_apparmor=apparmor,
                      host_selinux=selinux)
    translation = translate(executor.template, executor.container_path, container, options, "render")
    assert OPTIONS.userns_base == options.userns_base
    return list(translation.flags), config.uid


def run_checker(image: str, job_files: Path, tmp_path: Path, *, ro: Sequence[str] = (),
                rw: Sequence[str] = (), overrides: dict[str, Any] | None = None,
                drop_capabilities: bool = False, seccomp: str | None = None,
                extra_flags: Sequence[str] = ()) -> dict[str, Any]:
    """The checker's validated report from one build-like run of zuul-bwrap in the pod."""
    flags, uid = pod_flags(overrides, drop_capabilities)
    if seccomp is not None:
        flags = [f"seccomp={seccomp}" if f.startswith("seccomp=") else f for f in flags]
    # The emptyDirs as host dirs owned by the pod's user (podman's tmpfs ignores its mode here).
    host_uid = OPTIONS.userns_base + uid
    volumes = []
    for name, target, mode in (("state", STATE, 0o755), ("tmp", "/tmp", 0o1777)):
        source = tmp_path / name
        source.mkdir()
        os.chown(source, host_uid, host_uid)
        source.chmod(mode)
        volumes += ["--volume", f"{source}:{target}"]
    script = f"""set -e
mkdir -p {JOB}/work/logs {JOB}/home {JOB}/trusted {JOB}/ansible {JOB}/.ansible {PLAYBOOK} \
  {OTHER}/work {STATE}/executor-git/opendev.org/zuul/zuul
echo "another build's secret" > {OTHER}/work/secret
cp -r /job/playbooks/zuul-k8s-selftest/. {PLAYBOOK}/
python3 -c 'import socket, time
s = socket.socket(socket.AF_UNIX); s.bind("{STATE}/executor.socket"); s.listen(1); time.sleep(300)' &
while [ ! -S {STATE}/executor.socket ]; do sleep 0.1; done
zuul-bwrap --ro-paths {JOB}/untrusted {JOB}/trusted {JOB}/ansible {' '.join(ro)} \
  --rw-paths {JOB}/.ansible {' '.join(rw)} -- {JOB}/work {JOB}/home \
  python3 {PLAYBOOK}/files/jobcheck.py --work-dir {JOB}/work --playbook-dir {PLAYBOOK} \
  --build {BUILD} --output {JOB}/work/return.json --log-copy {JOB}/work/logs/report.json \
  --metadata-url http://127.0.0.1:9/ > {JOB}/checker.out 2>&1 || true
cat {JOB}/work/logs/report.json || cat {JOB}/checker.out
"""
    argv = ["podman", "run", "--rm", "--pull", "never", "--network", "none", *flags,
            *volumes,
            "--volume", f"{job_files}:/job:ro", *secrets(tmp_path, uid), *extra_flags,
            "--entrypoint", "/bin/sh", image, "-c", script]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stdout}\n{result.stderr}"
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"no report:\n{result.stdout}\n{result.stderr}") from None
    return report_module.validate(data, "the checker's report")


def failed(report: dict[str, Any]) -> set[str]:
    return {c["id"] for c in report["checks"] if c["status"] == "fail"}


def causes(report: dict[str, Any]) -> list[str]:
    return [d.rule.id for d in diagnose(report)]


def test_the_kits_pod_passes_every_check(executor_image: str, job_files: Path, tmp_path: Path) -> None:
    report = run_checker(executor_image, job_files, tmp_path)
    assert failed(report) == set(), json.dumps(report["checks"], indent=1)
    assert report["kind"] == "job" and report["build"]["context"] == "untrusted"
    assert report["environment"]["uid"] == 10001 and report["environment"]["cap_eff"] == []


def test_executor_paths_in_untrusted_ro_paths_are_caught(executor_image: str, job_files: Path,
                                                         tmp_path: Path) -> None:
    """zuul.conf's dir, the executor's /proc, another build and the command socket bound into builds."""
    report = run_checker(executor_image, job_files, tmp_path,
                         ro=["/etc/zuul", "/proc", OTHER, f"{STATE}/executor.socket"])
    assert failed(report) == {"build.zuul-conf", "build.proc", "build.processes",
                              "build.other-builds", "build.command-socket"}, report["checks"]
    assert causes(report) == ["executor-paths-exposed"]
    [socket_check] = [c for c in report["checks"] if c["id"] == "build.command-socket"]
    assert "can connect" in socket_check["message"], "a read-only bind does not stop connect()"


def test_a_writable_git_cache_is_caught(executor_image: str, job_files: Path, tmp_path: Path) -> None:
    report = run_checker(executor_image, job_files, tmp_path, rw=[f"{STATE}/executor-git"])
    assert failed(report) == {"build.git-cache", "build.writes"}, report["checks"]
    assert causes(report) == ["executor-paths-exposed"]


def test_a_read_only_git_cache_is_a_warning(executor_image: str, job_files: Path, tmp_path: Path) -> None:
    report = run_checker(executor_image, job_files, tmp_path, ro=[f"{STATE}/executor-git"])
    assert failed(report) == set(), report["checks"]
    [git] = [c for c in report["checks"] if c["id"] == "build.git-cache"]
    assert git["warning"] and "read-only" in git["message"]


def test_no_seccomp_filter_is_caught(executor_image: str, job_files: Path, tmp_path: Path) -> None:
    report = run_checker(executor_image, job_files, tmp_path, seccomp="unconfined")
    assert failed(report) == {"build.seccomp"}, report["checks"]
    assert causes(report) == ["job-without-seccomp"]


def test_a_root_pod_with_the_runtimes_default_capabilities_is_caught(
        executor_image: str, job_files: Path, tmp_path: Path) -> None:
    report = run_checker(executor_image, job_files, tmp_path, drop_capabilities=True,
                         overrides={"user": {"uid": 0, "gid": 0, "fsGroup": 0}})
    assert failed(report) == {"build.capabilities"}, report["checks"]
    assert causes(report) == ["root-job-capabilities"]


def test_a_token_is_found_only_where_a_build_can_see_it(executor_image: str, job_files: Path,
                                                        tmp_path: Path) -> None:
    """A token at the kubelet's path in the pod: out of a build's reach, until zuul.conf binds it."""
    token = tmp_path / "sa-token"
    token.write_text("fake.service-account.token")
    token.chmod(0o644)
    directory = "/var/run/secrets/kubernetes.io/serviceaccount"
    mounted = ["--volume", f"{token}:{directory}/token:ro"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    hidden = run_checker(executor_image, job_files, tmp_path / "a", extra_flags=mounted)
    assert failed(hidden) == set(), hidden["checks"]
    exposed = run_checker(executor_image, job_files, tmp_path / "b", extra_flags=mounted,
                          ro=[directory])
    assert failed(exposed) == {"build.sa-token"}, exposed["checks"]
    assert causes(exposed) == ["job-sees-token"]
    assert "fake.service-account.token" not in json.dumps(exposed)

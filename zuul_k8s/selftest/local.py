"""Running the probe under podman with the executor pod's security settings.

The I/O edge of the local self-test: find the executor in a set of objects,
ask podman.py for the flags, start the container with the probe on stdin,
and read its report. The container is removed whatever happens, including
Ctrl-C and SIGTERM, also when they come again during the removal.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from zuul_k8s.errors import Problem, UserError
from zuul_k8s.isolation import EXECUTOR_CONTAINER, is_executor_container
from zuul_k8s.selftest import probe_source, report
from zuul_k8s.selftest.podman import Translation
from zuul_k8s.workloads import PodTemplate, pod_template

CONTAINER_PREFIX = "zuul-k8s-selftest-"
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Executor:
    """The executor's pod template and container, found in some objects."""

    template: PodTemplate
    container_path: tuple[str | int, ...]
    container: dict[str, Any]
    document: int  # index of the object among the documents, for messages


def find_executor(objects: list[Any], source: str) -> Executor:
    """The first workload with a zuul-executor container: named so, or else by its image."""
    for index, obj in enumerate(objects):
        template = pod_template(obj) if isinstance(obj, dict) else None
        if template is None:
            continue
        # Init and ephemeral containers do not run Zuul.
        candidates = [(path, c) for path, c in template.containers() if path[-2] == "containers"]
        for path, container in sorted(candidates,
                                      key=lambda pc: pc[1].get("name") != EXECUTOR_CONTAINER):
            if is_executor_container(container):
                return Executor(template, path, container, index)
    raise UserError(Problem(
        source, "",
        f"no workload with a {EXECUTOR_CONTAINER} container (a container named "
        f"{EXECUTOR_CONTAINER}, or whose image names {EXECUTOR_CONTAINER}); pass the manifest "
        "of the executor's Deployment, StatefulSet, Pod or Job",
    ))


def host_lsms() -> tuple[bool, bool]:
    """(AppArmor, SELinux) enabled on this machine: podman can apply only those."""
    apparmor = Path("/sys/module/apparmor/parameters/enabled")
    try:
        apparmor_on = apparmor.read_text().strip() == "Y"
    except OSError:
        apparmor_on = False
    return apparmor_on, Path("/sys/fs/selinux/enforce").exists()


def podman_argv(podman: str, name: str, image: str, translation: Translation) -> list[str]:
    """`podman run` for the probe: the pod's flags, the probe on stdin, nothing pulled."""
    return [
        podman, "run", "--rm", "--interactive", "--name", name, "--pull", "never",
        *translation.flags,
        "--entrypoint", "python3", image, "-",
    ]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so `finally` removes the container."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored, then restored: a second Ctrl-C must not stop the removal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _remove(podman: str, name: str) -> None:
    # Its own session: a Ctrl-C at the terminal reaches the whole foreground process
    # group, and podman may catch SIGINT even when started with it ignored.
    subprocess.run([podman, "rm", "--force", "--ignore", "--time", "0", name],
                   stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=120,
                   start_new_session=True)


def _podman_failure(image: str, code: int, stderr: str) -> UserError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {code}"
    if "image not known" in stderr or "unable to find" in stderr.lower():
        message = (f"not in local storage ({last}): build or pull it first (`podman pull "
                   f"{image}`), or pass --image")
    elif code in (126, 127):
        message = (f"cannot run python3 ({last}): the probe needs Python 3.8+ on the "
                   "image's PATH")
    elif code in (0, 1):
        message = f"the probe printed no report (exit {code}): {last}"
    else:
        message = f"podman could not run the probe (exit {code}): {last}"
    return UserError(Problem(image, "", message))


def find_podman() -> str:
    podman = shutil.which("podman")
    if podman is None:
        raise UserError("podman is not installed: the local self-test runs the probe under "
                        "podman (Debian: apt-get install podman runc uidmap)")
    return podman


def run_probe(image: str, translation: Translation, *, timeout: float = DEFAULT_TIMEOUT,
              log: Callable[[str], None] = lambda _: None) -> report.Report:
    """The probe's validated report from a container with the translated settings."""
    podman = find_podman()
    name = CONTAINER_PREFIX + uuid.uuid4().hex[:12]
    argv = podman_argv(podman, name, image, translation)
    with _sigterm_interrupts():
        process = None
        try:
            log(f"running the probe in container {name} (image {image})")
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE)
            try:
                stdout, stderr = process.communicate(probe_source(), timeout=timeout)
            except subprocess.TimeoutExpired:
                raise UserError(Problem(image, "", f"the probe did not finish in {timeout:.0f} s; "
                                        "pass a larger --timeout")) from None
        finally:
            with _signals_ignored():  # another Ctrl-C or SIGTERM now waits for the removal
                _remove(podman, name)
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
    if process.returncode not in (0, 1) or not stdout.strip():
        raise _podman_failure(image, process.returncode, stderr.decode(errors="replace"))
    return report.parse(stdout, f"the probe's report from {image}")

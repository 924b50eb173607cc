"""Background services of the end-to-end Zuul: started with a log file, stopped for sure.

Each service runs in its own session, so a Ctrl-C at the terminal reaches the
harness only, which then stops everything in reverse order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class StartError(RuntimeError):
    """A service did not come up; the message carries the end of its log."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        if self.running():
            self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL to the whole session after `timeout`; the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def start(name: str, argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
          cwd: Path | None = None, user: int | None = None, group: int | None = None) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=dict(env) if env is not None else None,
                                   cwd=cwd, start_new_session=True, user=user, group=group,
                                   extra_groups=[] if user is not None else None)
    return Service(name, process, log)


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], T | None], what: str, timeout: float,
             service: Service | None = None, interval: float = 0.5) -> T:
    """check()'s first truthy result; StartError naming `what` (and the service's log) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if service is not None and not service.running():
            raise StartError(f"{service.name} exited ({service.process.returncode}) before {what}; "
                             f"end of {service.log}:\n{service.tail()}")
        if time.monotonic() > deadline:
            tail = f"; end of {service.log}:\n{service.tail()}" if service else ""
            raise StartError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(interval)

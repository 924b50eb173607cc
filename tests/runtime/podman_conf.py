"""The containers.conf the runtime tests and benchmarks point podman at.

Generated per session from containers.conf.in, since the nofile limit depends
on the machine; /etc is left alone.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPLATE = Path(__file__).with_name("containers.conf.in")


def write_containers_conf(directory: Path) -> Path:
    """containers.conf for this machine in `directory`; point CONTAINERS_CONF at it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 1048576
    path = directory / "containers.conf"
    path.write_text(TEMPLATE.read_text().replace("{nofile}", str(nofile)))
    return path


@contextmanager
def podman_conf(directory: Path) -> Iterator[None]:
    """podman pointed at this machine's containers.conf (runc, cgroupfs, ulimits) meanwhile."""
    directory.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(write_containers_conf(directory))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = previous

"""The containers.conf the runtime tests and benchmarks point podman at.

Generated per session from containers.conf.in, since the nofile limit depends
on the machine; /etc is left alone.
"""

from __future__ import annotations

import resource
from pathlib import Path

TEMPLATE = Path(__file__).with_name("containers.conf.in")


def write_containers_conf(directory: Path) -> Path:
    """containers.conf for this machine in `directory`; point CONTAINERS_CONF at it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 1048576
    path = directory / "containers.conf"
    path.write_text(TEMPLATE.read_text().replace("{nofile}", str(nofile)))
    return path

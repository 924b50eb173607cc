"""The machine's SELinux store, borrowed for the node tests and given back as found."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nodes.helpers import container_module, semodule_list
from tests.tools import require_tool

KIT_MODULE = "zuul_executor_bwrap"


@pytest.fixture(scope="session")
def selinux_store() -> Iterator[Path]:
    """The default store with refpolicy's container module in it (installed if absent).

    Removes at the end what the tests installed: the container module if it was
    not there before, and the kit's module in any case (a failed test may leave it).
    """
    for tool in ("semodule", "sesearch"):
        require_tool(tool)
    had_container = "container" in semodule_list()
    if KIT_MODULE in semodule_list():
        pytest.fail(f"the SELinux store already holds {KIT_MODULE}: remove it first "
                    f"(semodule -n -r {KIT_MODULE}); the tests must start without it")
    if not had_container:
        subprocess.run(["semodule", "-n", "-i", str(container_module())], check=True,
                       capture_output=True)
    try:
        yield Path("/etc/selinux/default")
    finally:
        remove = [m for m in (KIT_MODULE,) if m in semodule_list()]
        if not had_container:
            remove.append("container")
        if remove:
            subprocess.run(["semodule", "-n", *[a for m in remove for a in ("-r", m)]],
                           check=True, capture_output=True)

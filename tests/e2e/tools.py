"""What the end-to-end Zuul needs on this machine, checked before anything starts."""

from __future__ import annotations

from tests.e2e import postgres, process, zookeeper
from tests.runtime.podman_conf import podman_conf  # noqa: F401  (the e2e fixtures' podman setup)

TOOLS = ("podman", "runc", "bwrap", "debootstrap", "chroot", "unshare", "git", "java")


def require() -> None:
    """Skip (fail on CI) when the end-to-end Zuul cannot run here, saying what is missing."""
    import pytest

    from tests.tools import ON_CI

    absent = missing()
    if absent:
        message = "the end-to-end Zuul needs: " + "; ".join(absent)
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)


def missing() -> list[str]:
    """What is missing, each with how to get it; empty when everything is here."""
    import shutil

    out = [f"{tool} (.ci/run installs it)" for tool in TOOLS if shutil.which(tool) is None]
    if not zookeeper.JAR.exists():
        out.append(f"{zookeeper.JAR} (apt-get install zookeeper)")
    try:
        postgres.bindir()
    except process.StartError as error:
        out.append(str(error))
    return out

"""The real runtime for the self-test: podman with runc, bwrap, and images built here."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.runtime.images import BASE, ZUUL, Recipe, build
from tests.runtime.podman_conf import podman_conf
from tests.tools import require_tool


@pytest.fixture(scope="session")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """podman pointed at a containers.conf made for this machine, for the whole session."""
    for tool in ("podman", "runc", "bwrap"):
        require_tool(tool)
    with podman_conf(tmp_path_factory.mktemp("podman")):
        yield


def _image(recipe: Recipe) -> str:
    require_tool("debootstrap")
    require_tool("chroot")
    try:
        return build(recipe)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        pytest.fail(f"building the test image {recipe.tag} failed: {exc}")


@pytest.fixture(scope="session")
def base_image(podman_env: None) -> str:
    """Debian bookworm with bubblewrap, procps and python3 (about 70 s the first time)."""
    return _image(BASE)


@pytest.fixture(scope="session")
def zuul_image(podman_env: None) -> str:
    """The base plus Zuul from PyPI in /opt/zuul, for zuul-bwrap (about 3 min the first time)."""
    return _image(ZUUL)


def _derived(base: str, name: str, script: str) -> str:
    """`base` changed by a shell script run in it, committed once per base tag."""
    tag = base.replace("zuul-k8s-probe-base", name)
    if subprocess.run(["podman", "image", "exists", tag]).returncode == 0:
        return tag
    container = f"{name}-build"
    subprocess.run(["podman", "rm", "--force", "--ignore", container], check=True,
                   capture_output=True)
    try:
        subprocess.run(["podman", "run", "--name", container, base, "/bin/sh", "-ec", script],
                       check=True, capture_output=True)
        subprocess.run(["podman", "commit", "--quiet", container, tag], check=True,
                       capture_output=True)
    finally:
        subprocess.run(["podman", "rm", "--force", "--ignore", container], capture_output=True)
    return tag


@pytest.fixture(scope="session")
def slow_image(base_image: str) -> str:
    """The base image whose python3 sleeps first: a probe still running when interrupted."""
    return _derived(base_image, "zuul-k8s-probe-slow",
                    "printf '#!/bin/sh\\nsleep 600\\nexec /usr/bin/python3 \"$@\"\\n' "
                    "> /usr/local/bin/python3; chmod 755 /usr/local/bin/python3")


@pytest.fixture(scope="session")
def no_bwrap_image(base_image: str) -> str:
    """The base image without bubblewrap."""
    return _derived(base_image, "zuul-k8s-probe-nobwrap", "rm /usr/bin/bwrap")

"""Test images for the runtime tests, built here from Debian packages.

No registry can be pulled from on these machines, so the images are built with
debootstrap and `podman import` (docs/testing-here.md, "Podman as a stand-in
node"). Each image is tagged with a hash of its recipe: a tag that exists was
built from the same recipe and is reused, so only the first test session on a
machine pays for the build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_DIR = Path("/var/cache/zuul-k8s-tests")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
PATH_ENV = "/opt/zuul/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The upstream zuul image's unprivileged user (docs/facts.md, "Zuul executor").
ZUUL_USER = "zuul:x:10001:10001:Zuul:/var/lib/zuul:/bin/sh"
ZUUL_GROUP = "zuul:x:10001:"
ZUUL_HOME = "/var/lib/zuul"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides an image's content; its hash is the image tag."""

    name: str
    suite: str
    packages: tuple[str, ...]
    pip: tuple[str, ...] = ()  # requirements for a venv at /opt/zuul
    zuul_user: bool = False  # the upstream zuul image's user, uid 10001, home /var/lib/zuul

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(
            json.dumps([asdict(self), PATH_ENV, ZUUL_USER, ZUUL_GROUP, ZUUL_HOME]).encode()
        ).hexdigest()
        return f"localhost/{self.name}:{digest[:16]}"


BASE = Recipe("zuul-k8s-probe-base", "bookworm", ("bubblewrap", "procps", "python3"),
              zuul_user=True)
# Zuul 14.3.0 needs Python >= 3.11 (its package metadata), which bookworm has.
# util-linux (setpriv, choom) is part of minbase; python3-venv brings ensurepip.
ZUUL = Recipe(
    "zuul-k8s-probe-zuul",
    "bookworm",
    ("bubblewrap", "procps", "python3", "python3-venv"),
    ("zuul==14.3.0",),
    zuul_user=True,
)


def image_exists(tag: str) -> bool:
    return subprocess.run(
        ["podman", "image", "exists", tag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).returncode == 0


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per machine: parallel sessions share the cache."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / "build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], **kwargs: object) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} ... failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )


def _add_zuul_user(root: Path) -> None:
    with (root / "etc/passwd").open("a") as handle:
        handle.write(ZUUL_USER + "\n")
    with (root / "etc/group").open("a") as handle:
        handle.write(ZUUL_GROUP + "\n")
    home = root / ZUUL_HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 10001, 10001)


def _pip_install(root: Path, requirements: tuple[str, ...]) -> None:
    """A venv at /opt/zuul inside the chroot, filled from PyPI.

    The registries are reached through a proxy with its own CA: the host's CA
    bundle and pip.conf go into the chroot first (docs/testing-here.md).
    """
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    if Path("/etc/pip.conf").exists():
        shutil.copy2("/etc/pip.conf", root / "etc/pip.conf")
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    env = {"PATH": PATH_ENV, "HOME": "/root", "LANG": "C.UTF-8"}
    _run(["chroot", str(root), "/usr/bin/python3", "-m", "venv", "/opt/zuul"], env=env)
    _run(
        ["chroot", str(root), "/opt/zuul/bin/pip", "install", "--no-cache-dir",
         "--disable-pip-version-check", *requirements],
        env=env,
        timeout=1200,
    )


def build(recipe: Recipe) -> str:
    """The image's tag, building it first unless the same recipe was built before."""
    with _build_lock():
        if image_exists(recipe.tag):
            return recipe.tag
        debs = CACHE_DIR / "debootstrap"
        debs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="zuul-k8s-rootfs-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "root"
            _run([
                "debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
                f"--cache-dir={debs}", recipe.suite, str(root), DEBIAN_MIRROR,
            ], timeout=1200)
            if recipe.zuul_user:
                _add_zuul_user(root)
            if recipe.pip:
                _pip_install(root, recipe.pip)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(root / junk, ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            try:
                _run(
                    ["podman", "import", "--change", f"ENV PATH={PATH_ENV}", "-", recipe.tag],
                    stdin=tar.stdout,
                )
            finally:
                if tar.stdout:
                    tar.stdout.close()
                tar.wait()
        return recipe.tag


if __name__ == "__main__":  # build both images ahead of a test session
    for each in (BASE, ZUUL):
        print(build(each))

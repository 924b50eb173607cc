"""The zuul-executor image, built here the way upstream's Dockerfile builds it.

No registry can be pulled from on these machines, so the upstream image
(quay.io/zuul-ci/zuul-executor) is rebuilt from its recipe: Zuul's Dockerfile
(sdist of zuul 14.3.0) installs zuul into the image's Python under /usr/local,
runs `zuul-manage-ansible` (Ansible venvs under /usr/local/lib/zuul/ansible),
adds the `zuul` user (uid 10001, home /var/lib/zuul, mode 755), turns on git
protocol v2, declares VOLUME /var/lib/zuul and CMD zuul-executor -f; its
python-base parent makes dumb-init the ENTRYPOINT. The Debian packages are the
`zuul_base` runtime profile of Zuul's bindep.txt. Differences, each for a
reason: Debian bookworm (Python 3.11) from debootstrap instead of python-base's
trixie (Python 3.14), as tests/runtime/images.py builds its images; a venv at
/usr/local stands for python-base's own /usr/local Python; no oc/kubectl/skopeo
(container jobs only). The tag is a hash of everything below, so a recipe
built once is reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.runtime.images import CACHE_DIR, DEBIAN_MIRROR, _build_lock, _run, image_exists

ZUUL_VERSION = "14.3.0"
NAME = "localhost/zuul-k8s-e2e-executor"
SUITE = "bookworm"
# bindep.txt of zuul 14.3.0, entries without a profile or for platform:dpkg /
# debian-bookworm (the runtime set install-from-bindep installs), plus what the
# image's python-base brings (python3, venv, dumb-init, ca-certificates).
# openafs/krb5 are left out: AFS publishing is not exercised here.
PACKAGES = (
    "python3", "python3-venv", "dumb-init", "ca-certificates",
    "bubblewrap", "socat", "git", "rsync", "curl", "unzip", "bzip2", "openssh-client",
    "util-linux", "zstd", "procps", "libssl3", "libffi8", "libyaml-0-2", "libre2-9",
)
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Run inside the new root as root. Mirrors the Dockerfile's builder and zuul stages.
SETUP = f"""set -e
python3 -m venv /usr/local
/usr/local/bin/pip install --no-cache-dir --disable-pip-version-check zuul=={ZUUL_VERSION}
/usr/local/bin/zuul-manage-ansible
rm -rf /root/.local/share/virtualenv /root/.cache
useradd -u 10001 -m -d /var/lib/zuul -c "Zuul Daemon" zuul
chmod 755 /var/lib/zuul
git config --system protocol.version 2
"""
# The image's config, as `podman import --change` lines.
CHANGES = (
    f"ENV PATH={PATH_ENV}",
    "ENV LANG=C.UTF-8",
    'ENTRYPOINT ["/usr/bin/dumb-init", "--"]',
    'CMD ["/usr/local/bin/zuul-executor", "-f"]',
    "VOLUME /var/lib/zuul",
)


def tag() -> str:
    digest = hashlib.sha256(json.dumps([SUITE, PACKAGES, SETUP, CHANGES]).encode()).hexdigest()
    return f"{NAME}:{ZUUL_VERSION}-{digest[:12]}"


def _setup_root(root: Path) -> None:
    """Runs SETUP in the new root, in its own mount namespace with a /proc of its own.

    The registries are reached through a proxy with its own CA: the host's CA
    bundle and pip.conf go in first (docs/testing-here.md) and pip.conf comes out after.
    """
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    pip_conf = Path("/etc/pip.conf")
    if pip_conf.exists():
        shutil.copy2(pip_conf, root / "etc/pip.conf")
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    env = {"PATH": PATH_ENV, "HOME": "/root", "LANG": "C.UTF-8",
           "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
           "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}
    # A private mount namespace: the /proc mount ends with the process, so
    # removing the root afterwards can never walk into a host filesystem.
    _run(["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "/bin/sh", "-ec",
          'mount -t proc proc "$0/proc"; exec chroot "$0" /bin/sh -ec "$1"', str(root), SETUP],
         env=env, timeout=3600)
    (root / "etc/pip.conf").unlink(missing_ok=True)


def build() -> str:
    """The image's tag, building it first (debootstrap + PyPI, several minutes) unless cached."""
    wanted = tag()
    if image_exists(wanted):  # no lock needed to reuse a finished image
        return wanted
    with _build_lock():
        if image_exists(wanted):
            return wanted
        debs = CACHE_DIR / "debootstrap"
        debs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="zuul-k8s-e2e-rootfs-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "root"
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                  f"--cache-dir={debs}", SUITE, str(root), DEBIAN_MIRROR], timeout=1800)
            _setup_root(root)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(root / junk, ignore_errors=True)
            changes = [arg for change in CHANGES for arg in ("--change", change)]
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            try:
                _run(["podman", "import", *changes, "-", wanted], stdin=tar.stdout)
            finally:
                if tar.stdout:
                    tar.stdout.close()
                tar.wait()
    return wanted


if __name__ == "__main__":  # build the image ahead of a test session
    print(build())

"""zuul-scheduler and zuul-web from PyPI, in a venv outside the repository, cached by version.

Built once per machine (about 2 minutes) at /var/cache/zuul-k8s-test/zuul-<version>;
a `.complete` marker written last tells a finished venv from an interrupted build.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

ZUUL_VERSION = "14.3.0"
CACHE = Path("/var/cache/zuul-k8s-test")
MARKER = ".complete"


def ensure(version: str = ZUUL_VERSION) -> Path:
    """The venv's directory, built first if missing or unfinished."""
    venv = CACHE / f"zuul-{version}"
    requirement = f"zuul=={version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"zuul-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = venv / MARKER
        if marker.exists() and marker.read_text().strip() == requirement and (venv / "bin/zuul-web").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        # A venv's scripts name its path: build it where it stays.
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        result = subprocess.run([str(venv / "bin/pip"), "install", "--disable-pip-version-check", "-q",
                                 requirement], capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"pip install {requirement} into {venv} failed:\n{result.stderr[-3000:]}")
        marker.write_text(requirement + "\n")
    return venv


if __name__ == "__main__":  # build ahead of a test session
    print(ensure())

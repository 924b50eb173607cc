"""Running the CLI and building configs, for the core tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from zuul_k8s.config import Config, parse


def zuul_k8s(*args: str, stdin: str | bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, as a fresh process."""
    data = stdin.decode("latin-1") if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [sys.executable, "-m", "zuul_k8s", *args],
        input=data, capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def config(**sections: Any) -> Config:
    return parse(sections, "test.yaml")


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path

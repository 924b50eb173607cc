"""What the node tests share: the kit's Ansible modules, the CLI, refpolicy's container module."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.tools import REPO, require_tool

LIBRARY = REPO / "zuul_k8s" / "playbooks" / "library"
CACHE = REPO / ".cache" / "zuul-k8s-tests"
POLICY_SRC = Path("/usr/src/selinux-policy-src.tar.zst")
DEVEL_MAKEFILE = Path("/usr/share/selinux/devel/Makefile")
SELINUX_POLICY = Path("/etc/selinux/default/policy")


def load_module(name: str) -> ModuleType:
    """One of the kit's Ansible modules, imported for its pure functions."""
    spec = importlib.util.spec_from_file_location(f"kit_{name}", LIBRARY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_module(name: str, args: dict[str, Any], *, check: bool = False,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one of the kit's modules the way Ansible does (args file, JSON out)."""
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check,
                                       "_ansible_diff": True}}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(payload, handle)
        handle.flush()
        proc = subprocess.run([sys.executable, str(LIBRARY / f"{name}.py"), handle.name],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})})
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"{name} printed no JSON: {proc.stdout!r} {proc.stderr!r}") from None
    return result


@dataclass
class CliRun:
    rc: int
    stdout: str
    stderr: str
    seconds: float


def zuul_k8s(*args: str, timeout: int = 600) -> CliRun:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "zuul_k8s", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return CliRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def table_rows(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """The final table: (host, part) -> (result, why)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("HOST "))
    header = lines[start]
    cols = [header.index(word) for word in ("PART", "RESULT", "WHY")]
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        host = line[: cols[0]].strip()
        part = line[cols[0]: cols[1]].strip()
        result = line[cols[1]: cols[2]].strip()
        rows[(host, part)] = (result, line[cols[2]:].strip())
    return rows


def semodule_list(*extra: str) -> set[str]:
    out = subprocess.run(["semodule", *extra, "-l"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def policy_file(root: Path = Path("/")) -> Path:
    policies = sorted((root / SELINUX_POLICY.relative_to("/")).glob("policy.*"))
    assert policies, f"no compiled policy under {root / SELINUX_POLICY.relative_to('/')}"
    return policies[-1]


def sesearch_mount(target: str, policy: Path) -> str:
    out = subprocess.run(
        ["sesearch", "-A", "-s", "container_t", "-t", target, "-c", "filesystem", "-p", "mount",
         str(policy)], capture_output=True, text=True, check=True)
    return out.stdout


def container_module() -> Path:
    """refpolicy's container module (Debian's store lacks container_t), built once per source.

    testing-here.md: extract policy/modules/services/container.{te,if,fc} from
    selinux-policy-src and build with the devel Makefile. Cached by the
    source tarball's SHA-256 under .cache/.
    """
    for tool in ("make", "checkmodule", "semodule_package", "zstd"):
        require_tool(tool)
    for path in (POLICY_SRC, DEVEL_MAKEFILE):
        if not path.exists():
            require_tool(str(path))  # fails on CI, skips locally
    digest = hashlib.sha256(POLICY_SRC.read_bytes()).hexdigest()[:16]
    out_dir = CACHE / f"container-{digest}"
    built = out_dir / "container.pp"
    if built.exists():
        return built
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="container-", dir=CACHE))
    raw = subprocess.run(["zstd", "-dc", str(POLICY_SRC)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if "/policy/modules/services/container." in member.name:
                target = work / Path(member.name).name
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    subprocess.run(["make", "-f", str(DEVEL_MAKEFILE), "container.pp"], cwd=work, check=True,
                   capture_output=True)
    work.rename(out_dir)
    return built

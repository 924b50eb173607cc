"""Build the Kubernetes binaries the tests run, from Go modules, cached by content.

Each directory under gomod/ is a small Go module of the project's own whose
go.mod pins what it builds (kube: etcd and the Kubernetes components in one
multi-call binary; kwok: the fake-node controller; node: containerd and runc).
A build lands in the cache under a key made of the module's files, so a second
call costs one hash; GOMODCACHE and GOCACHE stay outside the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

GOMOD = Path(__file__).parent / "gomod"


def cache_root() -> Path:
    """Where built binaries live: ZUUL_K8S_TEST_CACHE, else /var/cache (root) or ~/.cache."""
    if env := os.environ.get("ZUUL_K8S_TEST_CACHE"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/zuul-k8s-test")
    return Path.home() / ".cache" / "zuul-k8s-test"


@dataclass(frozen=True)
class Target:
    """One binary: the Go package built from a module, and how."""

    module: str
    binary: str
    package: str = "."
    cgo: bool = False
    tags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # go.mod requirement whose version the binary reports, and the packages that hold
    # it (set at link time with -X, as upstream's hack/lib/version.sh does; a module
    # build otherwise reports v0.0.0-master, which no version check can read).
    version_of: str = ""
    version_vars: tuple[str, ...] = ()


TARGETS: dict[str, Target] = {
    t.binary: t
    for t in (
        Target("kube", "kube", version_of="k8s.io/kubernetes",
               version_vars=("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")),
        Target("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
    )
}


def register(target: Target) -> None:
    """Let another test module (the real node's) add its binaries."""
    TARGETS[target.binary] = target


def module_key(module: str) -> str:
    """A hash of everything that decides the module's build: go.mod, go.sum and its sources."""
    digest = hashlib.sha256()
    root = GOMOD / module
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    digest.update(go_version().encode())
    return digest.hexdigest()[:16]


def required_version(module: str, requirement: str) -> str:
    """The version go.mod requires of `requirement` (e.g. v1.35.4)."""
    for line in (GOMOD / module / "go.mod").read_text().splitlines():
        words = line.split()
        if requirement in words:
            return words[words.index(requirement) + 1]
    raise BuildError(f"tests/k8s/gomod/{module}/go.mod does not require {requirement}")


def version_ldflags(target: Target) -> list[str]:
    if not target.version_of:
        return []
    version = required_version(target.module, target.version_of)
    major, minor = version.lstrip("v").split(".")[:2]
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor,
              "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    return [f"-X {pkg}.{name}={value}" for pkg in target.version_vars for name, value in values.items()]


def go_version() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    try:
        return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        raise BuildError(f"Go is needed to build the test cluster: {err}") from err


class BuildError(RuntimeError):
    """A binary could not be built; the message carries go's own output."""


def binary(name: str, *, log: bool = True) -> Path:
    """The path of a built binary, building it first when its module changed."""
    target = TARGETS[name]
    out = cache_root() / f"{target.module}-{module_key(target.module)}" / target.binary
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOFLAGS": "-mod=readonly",
        "CGO_ENABLED": "1" if target.cgo else "0",
        **target.env,
    }
    env["PATH"] = f"/usr/local/go/bin:{env.get('PATH', '')}"
    cmd = ["go", "build", "-trimpath", "-ldflags=" + " ".join(["-s", "-w", *version_ldflags(target)]),
           "-o", str(out) + ".tmp"]
    if target.tags:
        cmd.append("-tags=" + ",".join(target.tags))
    cmd.append(target.package)
    if log:
        print(f"building {name} from tests/k8s/gomod/{target.module} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=GOMOD / target.module, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"go build of {name} failed:\n{done.stdout}{done.stderr}")
    os.replace(str(out) + ".tmp", out)
    if log:
        print(f"built {name} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return out


def main() -> int:
    """`python -m tests.k8s.build [NAME...]`: build (or find) the binaries, print their paths."""
    names = sys.argv[1:] or list(TARGETS)
    try:
        for name in names:
            print(binary(name))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

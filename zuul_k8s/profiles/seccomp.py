"""The kit's Localhost seccomp profile: the runtime default plus what bwrap needs.

The rule, written once here and nowhere else:

    profile = runtime default (seccomp_default.py, for a container without
              capabilities, on the node's architecture)
            + allow, unconditionally: BWRAP_SYSCALLS

Why each addition: bwrap creates the job's namespaces with `unshare` and
`clone` (CLONE_NEWUSER, CLONE_NEWPID ...), builds the new root with `mount`,
`umount2` and `pivot_root`, and joins namespaces with `setns`. The runtime
default allows `clone` only with an argument mask that excludes every
namespace flag; seccomp cannot express "clone with namespace flags but not
others" any better than that mask, so `clone` is allowed without condition.
The default answers `clone3` with ENOSYS (so glibc falls back to `clone`);
the kit allows `clone3` too, since its flags live in memory that seccomp cannot
inspect, and refusing it would only move the same request to `clone`.

The generated files are package data, committed, and checked for drift by the
tests. Regenerate them with:

    python -m zuul_k8s.profiles.seccomp --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zuul_k8s.profiles import seccomp_default as default

# What bwrap needs beyond the runtime default (design.md gate 4; seen in
# testing-here.md: moby default + exactly these makes bwrap --unshare-all work).
BWRAP_SYSCALLS = ("clone", "clone3", "mount", "pivot_root", "setns", "umount2", "unshare")

# containerd and CRI-O refuse with EPERM what the profile does not allow
# (containerd contrib/seccomp/seccomp_default.go: DefaultErrnoRet EPERM).
DEFAULT_ACTION = "SCMP_ACT_ERRNO"
EPERM = 1

PROFILE_NAME = "zuul-executor.json"
# Where the kubelet looks, relative to its seccomp root (facts.md, Seccomp).
LOCALHOST_PROFILE = f"profiles/{PROFILE_NAME}"
GENERATED_DIR = Path(__file__).resolve().parent / "seccomp"


def build(arch: str) -> dict[str, Any]:
    """The profile for one node architecture (`uname -m`), as OCI runtime-spec JSON."""
    try:
        table = default.ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(default.ARCHITECTURES))
        raise ValueError(f"no seccomp table for architecture {arch!r}; known: {known}") from None
    base = set(default.ALLOW) | set(default.ALLOW_KERNEL_4_8) | set(table["allow"])
    overlap = base & set(BWRAP_SYSCALLS)
    if overlap:  # the rule says "additions": keep them visibly separate
        raise ValueError(f"bwrap syscalls already in the runtime default: {sorted(overlap)}")
    syscalls: list[dict[str, Any]] = [
        {"names": sorted(base), "action": "SCMP_ACT_ALLOW"},
        {"names": list(BWRAP_SYSCALLS), "action": "SCMP_ACT_ALLOW"},
    ]
    for name, index, value, op in default.ARG_RULES:
        syscalls.append(
            {
                "names": [name],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": index, "value": value, "op": op}],
            }
        )
    return {
        "defaultAction": DEFAULT_ACTION,
        "defaultErrnoRet": EPERM,
        "architectures": list(table["seccomp"]),
        "syscalls": syscalls,
    }


def render(arch: str) -> str:
    """The profile as the exact text shipped (stable key order, one name per line)."""
    return json.dumps(build(arch), indent=2) + "\n"


def generated_path(arch: str) -> Path:
    """The committed profile of one architecture; its dir is a kubelet-style seccomp root."""
    return GENERATED_DIR / arch / LOCALHOST_PROFILE


def architectures() -> list[str]:
    return sorted(default.ARCHITECTURES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zuul_k8s.profiles.seccomp", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--arch", choices=architectures(), help="print one profile to stdout")
    group.add_argument("--write", action="store_true", help="rewrite the committed profiles")
    args = parser.parse_args(argv)
    if args.write:
        for arch in architectures():
            path = generated_path(arch)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(arch), encoding="utf-8")
            print(path)
        return 0
    sys.stdout.write(render(args.arch or "x86_64"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

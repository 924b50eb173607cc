"""Probe reports built as data, for testing the diagnosis where no real node can produce them.

SELinux and AppArmor do not run on these machines, and a kernel or bwrap that
is too old cannot be had either, so the diagnosis of those causes is tested on
reports shaped like the probe's (each one validated against the report schema),
with bwrap's own messages as stderr. Real reports come from tests/runtime.
"""

from __future__ import annotations

import copy
from typing import Any

from zuul_k8s.selftest import jobcheck, probe, report

# What the probe saw in the kit's default pod at uid 10001 on podman here.
PASSING_ENVIRONMENT: dict[str, Any] = {
    "kernel": "6.18.44",
    "uid": 10001,
    "gid": 10001,
    "user": "zuul",
    "groups": [10001],
    "hostname": "zuul-executor-0",
    "uid_map": [[0, 2097152, 65536]],
    "gid_map": [[0, 2097152, 65536]],
    "own_user_namespace": True,
    "proc_masked_paths": [],
    "proc_masked": False,
    "seccomp": "filter",
    "no_new_privs": True,
    "cap_eff": [],
    "cap_bnd": [],
    "max_user_namespaces": 2147483647,
    "unprivileged_userns_clone": None,
    "apparmor_restrict_unprivileged_userns": None,
    "selinux_context": None,
    "apparmor_profile": None,
    "bwrap_path": "/usr/bin/bwrap",
    "bwrap_version": "0.8.0",
    "zuul_bwrap_path": "/opt/zuul/bin/zuul-bwrap",
    "python": "3.11.2",
}


# Where the zuul-k8s-selftest job's checker ran, in a job report.
BUILD: dict[str, Any] = {
    "uuid": "0123456789abcdef0123456789abcdef", "job": "zuul-k8s-selftest",
    "executor": "10.0.0.7", "context": "untrusted",
    "work_dir": "/var/lib/zuul/builds/0123456789abcdef0123456789abcdef/work",
    "paths": {"zuul_conf": "/etc/zuul/zuul.conf", "ssh_key": "/var/lib/zuul/.ssh/id_rsa",
              "tls_key": "/tls/client/tls.key", "state_dir": "/var/lib/zuul",
              "git_dir": "/var/lib/zuul/executor-git",
              "command_socket": "/var/lib/zuul/executor.socket"},
}


def make_report(environment: dict[str, Any] | None = None,
                failures: dict[str, str] | None = None, kind: str = "probe") -> report.Report:
    """A valid report: `failures` maps check ids to their stderr; the rest pass.

    Checks that need a failed one are skipped, as the probe does. kind "job" makes
    the zuul-k8s-selftest job's report (its checks, and where the build ran).
    """
    env = copy.deepcopy(PASSING_ENVIRONMENT)
    env.update(environment or {})
    failures = failures or {}
    checks: list[dict[str, Any]] = []
    status_of: dict[str, str] = {}
    for check_id, title, needs, _ in (jobcheck.CHECKS if kind == "job" else probe.CHECKS):
        if any(status_of.get(need) != "pass" for need in needs):
            status, message, stderr = "skip", "needs a check that did not pass", ""
        elif check_id in failures:
            stderr = failures[check_id]
            status, message = "fail", f"{title}: no ({stderr.splitlines()[-1] if stderr else 'x'})"
        else:
            status, message, stderr = "pass", title, ""
        status_of[check_id] = status
        checks.append({
            "id": check_id, "title": title, "status": status, "message": message,
            "warning": None, "duration_ms": 1.0,
            "command": None if status == "skip" else ["bwrap", "--unshare-user", "true"],
            "exit_code": 1 if status == "fail" else (0 if status == "pass" else None),
            "stdout": "", "stderr": stderr,
        })
    summary = {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "skip")}
    data = {
        "apiVersion": probe.REPORT_API_VERSION, "kind": kind, "probeVersion": probe.PROBE_VERSION,
        "startedAt": "2025-01-01T00:00:00Z", "durationMs": 100.0, "environmentMs": 5.0,
        "ok": summary["fail"] == 0, "summary": summary, "environment": env, "checks": checks,
    }
    if kind == "job":
        data["build"] = copy.deepcopy(BUILD)
    return report.validate(data, "test report")

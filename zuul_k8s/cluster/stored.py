"""Did the API server keep the isolation settings the kit sent?

A server whose UserNamespacesSupport and ProcMountType gates are off (1.32 and
older by default, or switched off) drops `hostUsers` and turns
`procMount: Unmasked` into `Default` without a word: the object is stored, the
apply "succeeds", and every build fails in bwrap. Seen on kube-apiserver
1.35.4 with `--feature-gates=UserNamespacesSupport=false,ProcMountType=false`
and with `--emulated-version=1.32` (tests/cluster/test_versions.py). So the
kit reads back what the server would store and holds it to the same
isolation contract as the render.
"""

from __future__ import annotations

from typing import Any

from zuul_k8s.findings import Finding, Severity
from zuul_k8s.validate import contract

WHY = ("the API server stored it differently from what the kit sent: its feature gates "
       "UserNamespacesSupport and ProcMountType are off (the default before Kubernetes 1.33), "
       "so it drops spec.hostUsers and sets procMount to Default")
FIX = ("turn both gates on for the API server, controller-manager and kubelets (on by default "
       "from 1.33), or run the executors on a 1.33+ cluster")


def changed_by_server(sent: dict[str, Any], stored: dict[str, Any], minor: int) -> list[Finding]:
    """Contract errors the stored object has and the sent one had not."""
    before = {(f.rule, f.path) for f in contract.pod_findings(sent, minor) if f.severity is Severity.ERROR}
    return [
        Finding(f.severity, "server", f.rule, f.kind, f.name, f.path, f"{f.message}; {WHY}", FIX)
        for f in contract.pod_findings(stored, minor)
        if f.severity is Severity.ERROR and (f.rule, f.path) not in before
    ]

"""What bwrap needs from the executor's pod, written once.

The renderer builds the pod from these tables and the contract validator checks
any manifest against them, so the two cannot disagree. Sources: design.md's five
gates and facts.md (Kubernetes feature gates, Pod Security, Zuul's bwrap line).
"""

from __future__ import annotations

from dataclasses import dataclass

from zuul_k8s.findings import Severity
from zuul_k8s.podsecurity.registry import admitted_from

EXECUTOR_CONTAINER = "zuul-executor"
EXECUTOR_IMAGE_MARK = "zuul-executor"


@dataclass(frozen=True)
class Setting:
    """A field the executor's pod or container must hold, and why."""

    rule: str
    path: tuple[str, ...]  # inside the pod spec, or the container's securityContext
    value: object
    severity: Severity
    why: str
    fix: str


# Pod spec fields. hostUsers: KEP-127; procMount Unmasked is rejected by API
# validation unless hostUsers is false (kubernetes.io security-context docs).
POD_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "hostUsers",
        ("hostUsers",),
        False,
        Severity.ERROR,
        "the pod needs its own user namespace: bwrap creates namespaces and mounts /proc, "
        "which an unprivileged pod may do only inside a user namespace it owns",
        "set spec.hostUsers: false (needs Kubernetes 1.33+, containerd 2.0+ or CRI-O 1.25+, "
        "Linux 6.3+)",
    ),
)

# Container securityContext fields of the executor container.
CONTAINER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "procMount",
        ("procMount",),
        "Unmasked",
        Severity.ERROR,
        "bwrap mounts a fresh /proc for the job's PID namespace, which a masked /proc refuses "
        "(`bwrap: Can't mount proc on /newroot/proc: Operation not permitted`)",
        "set securityContext.procMount: Unmasked (together with spec.hostUsers: false)",
    ),
    Setting(
        "allowPrivilegeEscalation",
        ("allowPrivilegeEscalation",),
        False,
        Severity.ERROR,
        "nothing in the executor or its jobs may gain privileges (bwrap runs unprivileged here)",
        "set securityContext.allowPrivilegeEscalation: false",
    ),
    Setting(
        "dropAllCapabilities",
        ("capabilities", "drop"),
        ["ALL"],
        Severity.WARNING,
        "without dropping ALL the container keeps the runtime's default capabilities, and a "
        "root executor's jobs inherit them inside their sandbox",
        "set securityContext.capabilities.drop: [ALL]",
    ),
)

# Pod spec fields that hand the node's namespaces to the pod, and so to every job
# (bwrap shares the pod's network: `--share-net`). Here `value` is what must NOT be
# set. The API server also refuses each of them beside hostUsers: false
# (kubernetes.io user-namespaces docs), which the executor needs.
HOST_NAMESPACES: tuple[Setting, ...] = tuple(
    Setting(
        "hostNamespace",
        (field,),
        True,
        Severity.ERROR,
        f"{field}: true shares the node's {what} with the executor and its jobs ({why}); the API "
        "server also refuses it together with hostUsers: false",
        f"remove {field} (the executor needs none of the node's namespaces)",
    )
    for field, what, why in (
        ("hostNetwork", "network", "a job can reach every service listening on the node and the "
         "cloud metadata service, past any NetworkPolicy"),
        ("hostPID", "process table", "the executor sees and may signal every process on the node"),
        ("hostIPC", "IPC namespace", "shared memory of every host process"),
    )
)

# Volume types that reach into the node's own file system: (why, fix).
NODE_VOLUMES: dict[str, tuple[str, str]] = {
    "hostPath": (
        "a hostPath volume puts the node's file system in the executor: a job that gets past bwrap "
        "reads or writes the node",
        "use a Secret, ConfigMap, emptyDir or PVC volume (the kit's `mounts` and `state` keys)",
    ),
}

# Mount propagation that carries mounts made in the container back to the node;
# the API server allows it only in privileged containers.
NODE_PROPAGATION = "Bidirectional"

# SELinux types that lift confinement altogether (container-selinux: spc_t is the
# "super privileged container" type; unconfined_t is no policy). Baseline allows
# only container_t, container_init_t, container_kvm_t and container_engine_t.
UNCONFINED_SELINUX_TYPES = ("spc_t", "unconfined_t")

# The AppArmor annotation (before the appArmorProfile field, still read):
# `container.apparmor.security.beta.kubernetes.io/<container>: unconfined`.
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

# The one capability bwrap may need: writing a uid map that maps root needs
# CAP_SETFCAP (design.md gate 2); a non-root executor needs none.
ROOT_ONLY_CAPABILITIES = ("SETFCAP",)

# Seccomp profile types and their verdict (facts.md, Seccomp).
SECCOMP_VERDICTS: dict[str | None, tuple[Severity, str, str] | None] = {
    "Localhost": None,
    "RuntimeDefault": (
        Severity.ERROR,
        "the runtime's default seccomp profile refuses unshare, mount and namespace clone flags "
        "without CAP_SYS_ADMIN (`bwrap: No permissions to create new namespace`)",
        "use the kit's Localhost profile: seccompProfile {type: Localhost, localhostProfile: "
        "profiles/zuul-executor.json}, pushed by `zuul-k8s nodes prepare`",
    ),
    "Unconfined": (
        Severity.WARNING,
        "no seccomp filter at all: bwrap works, but the jobs' attack surface on the kernel is "
        "the widest, and Pod Security baseline denies it",
        "use the kit's Localhost profile (isolation.seccomp: Localhost)",
    ),
    None: (
        Severity.WARNING,
        "no seccomp profile: the pod runs Unconfined, or RuntimeDefault where the kubelet sets "
        "seccompDefault: true, and then bwrap fails",
        "set seccompProfile {type: Localhost, localhostProfile: profiles/zuul-executor.json}",
    ),
}


@dataclass(frozen=True)
class VersionGate:
    """What a range of Kubernetes minor versions means for the executor."""

    first: int
    last: int
    severity: Severity | None
    message: str
    fix: str


# facts.md, Kubernetes feature gates: UserNamespacesSupport and ProcMountType are
# beta and on by default from 1.33, beta and off in 1.31-1.32 (ProcMountType was
# alpha until 1.30), so older clusters cannot run the executor unprivileged.
VERSION_GATES: tuple[VersionGate, ...] = (
    VersionGate(33, 999, None, "", ""),
    VersionGate(
        31,
        32,
        Severity.WARNING,
        "user namespaces (hostUsers) and procMount are beta but off by default before 1.33",
        "enable the feature gates UserNamespacesSupport=true and ProcMountType=true on the "
        "API server and every kubelet, or upgrade to Kubernetes 1.33+",
    ),
    VersionGate(
        0,
        30,
        Severity.ERROR,
        "procMount: Unmasked is alpha before 1.31: the executor cannot run unprivileged",
        "upgrade the cluster to Kubernetes 1.33 or newer",
    ),
)

# Pod Security policy version from which baseline admits procMount: Unmasked
# with hostUsers: false (facts.md, Pod Security Admission): read from the
# evaluator's table of checks, so the two cannot disagree.
BASELINE_ADMITS_UNMASKED_FROM: int = admitted_from("procMount", "user-namespace")  # type: ignore[assignment]


def version_gate(minor: int) -> VersionGate:
    return next(g for g in VERSION_GATES if g.first <= minor <= g.last)


def is_executor_container(container: dict[str, object]) -> bool:
    image = container.get("image")
    return container.get("name") == EXECUTOR_CONTAINER or (
        isinstance(image, str) and EXECUTOR_IMAGE_MARK in image
    )

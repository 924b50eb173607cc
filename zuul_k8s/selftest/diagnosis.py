"""From a probe report to causes, and the setting that fixes each.

The rules are data: each row says which failed checks, bwrap messages and
environment facts point to one cause, and names the config key, pod field or
node step that mends it. A small engine reads the table; the troubleshooting
docs are generated from the same rows (hence `bwrap_message`, the message each
row explains). Rules look only at the report, so they can grow without a new
probe in every image.

Sources for the messages and causes: design.md (the five gates), facts.md,
testing-here.md ("What that stand-in showed") and bubblewrap.c's die() texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from zuul_k8s.selftest.report import Report

NODE_PREPARE = "`zuul-k8s nodes prepare` (playbooks/node-prepare.yaml)"


@dataclass(frozen=True)
class Failed:
    """Holds when any of these checks failed."""

    checks: tuple[str, ...]


@dataclass(frozen=True)
class Stderr:
    """Holds when a failed check's stderr matches (any check, or only those named)."""

    pattern: str
    checks: tuple[str, ...] = ()

    def matches(self, check: dict[str, Any]) -> bool:
        if self.checks and check["id"] not in self.checks:
            return False
        return re.search(self.pattern, check["stderr"]) is not None


@dataclass(frozen=True)
class Fact:
    """Holds when an environment fact compares as stated (ops: FACT_OPS)."""

    name: str
    op: str
    value: Any = None


Condition = Failed | Stderr | Fact

# Comparisons a Fact may use; a missing fact is None.
FACT_OPS: dict[str, Any] = {
    "is": lambda fact, value: fact == value,
    "is not": lambda fact, value: fact != value,
    "has": lambda fact, value: isinstance(fact, list) and value in fact,
    "lacks": lambda fact, value: not (isinstance(fact, list) and value in fact),
    "set": lambda fact, _: fact not in (None, "", "unconfined"),
    "matches": lambda fact, value: isinstance(fact, str) and re.search(value, fact) is not None,
}


@dataclass(frozen=True)
class Rule:
    """One cause: when it applies, what bwrap says, why, and what mends it."""

    id: str
    title: str
    bwrap_message: str  # the message this row explains, as bwrap prints it
    when: tuple[Condition, ...]  # all must hold
    cause: str
    fix: str
    also_explains: tuple[str, ...] = field(default=())  # failed checks that follow from it
    # failed checks whose stderr matches this follow from it too
    also_explains_stderr: str | None = None


# bwrap's messages (bubblewrap.c), as patterns tolerant of small wording changes.
NO_NAMESPACE = r"No permissions to creat\w* (a )?new namespace"
PROC_EPERM = r"Can't mount proc on /newroot/proc: Operation not permitted"
MOUNT_EACCES = r"(Can't mount|Failed to mount|Failed to make|Can't bind mount|Can't remount)[^\n]*: Permission denied"
LSM_MOUNT_EACCES = r"Can't mount (proc|devpts) on /newroot/\S+: Permission denied"

PROBE_RULES: tuple[Rule, ...] = (
    Rule(
        id="bwrap-missing",
        title="bwrap is not in the image",
        bwrap_message="(none: the probe finds no bwrap on PATH)",
        when=(Failed(("env.bwrap",)), Fact("bwrap_path", "is", None)),
        cause="the executor image has no bubblewrap, so Zuul cannot run any job",
        fix="set `image` to a zuul-executor image (it ships bwrap), or install the bubblewrap "
        "package (0.8.0 or newer) into your image",
    ),
    Rule(
        id="bwrap-too-old",
        title="bwrap is too old",
        bwrap_message="(none: the probe reads `bwrap --version`)",
        when=(Failed(("env.bwrap",)), Fact("bwrap_path", "is not", None)),
        cause="bubblewrap before 0.8.0 has no --disable-userns, so Zuul lets jobs create "
        "nested user namespaces",
        fix="set `image` to an image with bubblewrap 0.8.0 or newer (current zuul-executor "
        "images qualify)",
        also_explains=("isolation.nested-userns",),
    ),
    Rule(
        id="kernel-too-old",
        title="the node's kernel is too old",
        bwrap_message="(none: the probe reads the kernel release)",
        when=(Failed(("env.kernel",)),),
        cause="pods with their own user namespace (hostUsers: false) need Linux 6.3 or newer "
        "(idmapped tmpfs mounts); on older kernels the runtime refuses or ignores them",
        fix="run the executors on nodes with Linux 6.3+ only: label them and set "
        "`scheduling.nodeSelector` (pod: spec.nodeSelector)",
    ),
    Rule(
        id="userns-disabled",
        title="user namespaces are disabled on the node",
        bwrap_message="bwrap: Creating new namespace failed: No space left on device",
        when=(Failed(("env.userns-limit",)),),
        cause="the node's kernel refuses new user namespaces (user.max_user_namespaces is 0, "
        "or kernel.unprivileged_userns_clone is 0)",
        fix="on the node, set user.max_user_namespaces above 0 (the kernel's default is half "
        "of kernel.threads-max) and, on Debian/Ubuntu kernels, kernel.unprivileged_userns_clone=1, "
        "persisted in /etc/sysctl.d/; pods with hostUsers: false need user namespaces anyway. "
        "The kit's node playbook (playbooks/node-prepare.yaml) sets no sysctl: set these with "
        "your own node configuration",
        also_explains=("bwrap.userns", "bwrap.proc", "bwrap.dev", "bwrap.executor", "zuul.bwrap"),
    ),
    Rule(
        id="no-userns",
        title="the pod has no user namespace of its own",
        bwrap_message="bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
        when=(Failed(("env.userns",)),),
        cause="the pod runs in the node's user namespace: spec.hostUsers is not false (an API "
        "server with UserNamespacesSupport off drops it without a word), or a kubelet older "
        "than 1.30 ran it on a runtime that ignores it (containerd 1.7). Then an "
        "unprivileged pod's /proc stays masked and bwrap may not mount a new one, and a "
        "privileged pod works only by holding root on the node",
        fix="set spec.hostUsers: false (`zuul-k8s render` always does); the node needs "
        "containerd 2.0+ or CRI-O 1.25+, runc 1.2+ or crun 1.9+, Linux 6.3+, and Kubernetes "
        "1.33+ (UserNamespacesSupport); `zuul-k8s nodes verify` (playbooks/node-prepare.yaml "
        "in check mode) warns about each node whose runtime or kernel is older",
        also_explains=("env.proc", "zuul.bwrap"),
        also_explains_stderr=PROC_EPERM,
    ),
    Rule(
        id="proc-masked",
        title="/proc is masked",
        bwrap_message="bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
        when=(Failed(("env.proc",)), Fact("own_user_namespace", "is", True)),
        cause="the runtime masks parts of /proc (procMount: Default), and the kernel refuses a "
        "new procfs where the existing one is partly hidden",
        fix="set the executor container's securityContext.procMount: Unmasked (`zuul-k8s "
        "render` does; needs hostUsers: false and ProcMountType, on by default from "
        "Kubernetes 1.33)",
        also_explains=("zuul.bwrap",),
        also_explains_stderr=PROC_EPERM,
    ),
    Rule(
        id="root-without-setfcap",
        title="a root executor lacks CAP_SETFCAP",
        bwrap_message="bwrap: setting up uid map: Operation not permitted",
        when=(
            Stderr(r"setting up uid map: Operation not permitted"),
            Fact("uid", "is", 0),
            Fact("cap_bnd", "lacks", "SETFCAP"),
        ),
        cause="the executor runs as uid 0, and writing a uid map that maps root needs "
        "CAP_SETFCAP, which the container does not hold",
        fix="run as uid 10001 (`user.uid: 10001`, the default; pod: runAsUser: 10001), or keep "
        "uid 0 and add SETFCAP: securityContext.capabilities.add: [SETFCAP] (`zuul-k8s "
        "render` adds it for `user.uid: 0`)",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="nonroot-with-capabilities",
        title="a non-root executor holds capabilities",
        bwrap_message="bwrap: Unexpected capabilities but not setuid, old file caps config?",
        when=(Stderr(r"Unexpected capabilities but not setuid"),),
        cause="the executor runs as a non-root user but holds capabilities, which bwrap refuses "
        "(it is not installed setuid)",
        fix="add no capabilities for a non-root executor: securityContext.capabilities "
        "{drop: [ALL]} and no `add` (`user.uid: 10001` renders exactly that)",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="seccomp-refuses-namespaces",
        title="the seccomp profile refuses namespaces",
        bwrap_message="bwrap: No permissions to create new namespace, likely because the kernel "
        "does not allow non-privileged user namespaces.",
        when=(
            Stderr(NO_NAMESPACE),
            Fact("seccomp", "is", "filter"),
            Fact("max_user_namespaces", "is not", 0),
            Fact("unprivileged_userns_clone", "is not", 0),
        ),
        cause="the pod's seccomp profile (the runtime's RuntimeDefault, or any profile without "
        "the kit's additions) refuses unshare, mount and clone with namespace flags to a "
        "container without CAP_SYS_ADMIN; bwrap's hint about the kernel is misleading here",
        fix="`isolation.seccomp: Localhost` (pod: securityContext.seccompProfile {type: "
        "Localhost, localhostProfile: profiles/zuul-executor.json}), with the profile on every "
        f"node by {NODE_PREPARE}; a pod without a profile gets RuntimeDefault where the "
        "kubelet sets seccompDefault: true",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="apparmor-userns-restricted",
        title="AppArmor restricts unprivileged user namespaces",
        bwrap_message="bwrap: setting up uid map: Permission denied",
        when=(
            Fact("apparmor_restrict_unprivileged_userns", "is", 1),
            Stderr(r"(setting up uid map|Failed RTM_NEWADDR|Creating new namespace failed)"
                   r"[^\n]*(Permission denied|Operation not permitted)"),
        ),
        cause="the node sets kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10+), "
        "and the pod's AppArmor profile has no `userns,` rule",
        fix="`isolation.apparmor: Localhost` (pod: securityContext.appArmorProfile {type: "
        f"Localhost, localhostProfile: zuul-executor}}), loaded on the node by {NODE_PREPARE}, "
        "which adds `userns,` on AppArmor 4",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="selinux-denies-mount",
        title="SELinux denies mounting proc or devpts",
        bwrap_message="bwrap: Can't mount proc on /newroot/proc: Permission denied",
        when=(Stderr(LSM_MOUNT_EACCES), Fact("selinux_context", "set")),
        cause="the container runs as an SELinux type (container_t) that may not mount proc or "
        "devpts filesystems",
        fix="`isolation.selinux: module` (the kit's policy module zuul_executor_bwrap, installed "
        f"by {NODE_PREPARE}), or `isolation.selinux: container_engine_t` (pod: "
        "securityContext.seLinuxOptions.type: container_engine_t)",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="apparmor-denies-mount",
        title="AppArmor denies mounts",
        bwrap_message="bwrap: Failed to make / slave: Permission denied",
        when=(Stderr(MOUNT_EACCES), Fact("apparmor_profile", "set"),
              Fact("selinux_context", "is", None)),
        cause="the container's AppArmor profile (containerd's cri-containerd.apparmor.d has "
        "`deny mount,`) refuses the mounts bwrap makes",
        fix="`isolation.apparmor: Localhost` (pod: securityContext.appArmorProfile {type: "
        f"Localhost, localhostProfile: zuul-executor}}), loaded on the node by {NODE_PREPARE}",
        also_explains=("zuul.bwrap",),
    ),
    Rule(
        id="root-job-capabilities",
        title="a root executor's jobs keep more capabilities than SETFCAP",
        bwrap_message="(none: the probe reads CapEff inside the sandbox)",
        when=(Failed(("isolation.capabilities", "build.capabilities")), Fact("uid", "is", 0)),
        cause="bwrap keeps the capabilities of a sandbox uid 0, so a root executor's jobs hold "
        "every capability its container holds (in their own user namespace); the container "
        "keeps more than SETFCAP, the one a root executor needs (for its uid map): the "
        "runtime's default set, or capabilities the pod adds",
        fix="in the executor container's securityContext.capabilities drop ALL and add only "
        "SETFCAP ({drop: [ALL], add: [SETFCAP]}, what `zuul-k8s render` renders for "
        "`user.uid: 0`), or run as uid 10001 (`user.uid: 10001`, the default; pod: runAsUser: "
        "10001), whose jobs hold no capability",
    ),
    Rule(
        id="job-holds-capabilities",
        title="jobs hold capabilities",
        bwrap_message="(none: the probe reads CapEff inside the sandbox)",
        when=(Failed(("isolation.capabilities", "build.capabilities")), Fact("uid", "is not", 0)),
        cause="a job inside bwrap holds capabilities beyond the container's own, or may gain "
        "privileges",
        fix="drop every capability (securityContext.capabilities.drop: [ALL]), set "
        "allowPrivilegeEscalation: false, and run as uid 10001 (`user.uid: 10001`)",
    ),
)

# zuul.conf keys a fix may name: [executor] options of Zuul 14.3.0
# (doc/source/configuration.rst; zuul/executor/server.py reads them with get_default).
ZUUL_CONF_KEYS = (
    "[executor] untrusted_ro_paths", "[executor] untrusted_rw_paths",
    "[executor] trusted_ro_paths", "[executor] trusted_rw_paths",
)
# The job's run playbook, as `zuul-k8s selftest --write-job` writes it.
JOB_PLAYBOOK = "playbooks/zuul-k8s-selftest/run.yaml"
EXECUTOR_PATH_CHECKS = (
    "build.zuul-conf", "build.ssh-key", "build.tls-key", "build.other-builds", "build.git-cache",
    "build.command-socket", "build.writes", "build.proc", "build.processes",
)

# What the zuul-k8s-selftest job finds from inside a real build (jobcheck.py).
JOB_RULES: tuple[Rule, ...] = (
    Rule(
        id="job-runs-trusted",
        title="the self-test job ran as a trusted playbook",
        bwrap_message="(none: the job reads where Zuul put its playbook)",
        when=(Failed(("build.context",)),),
        cause="the zuul-k8s-selftest job is defined in a config project, so Zuul runs its "
        "playbook trusted, with [executor] trusted_ro_paths and trusted_rw_paths: the report "
        "shows what trusted playbooks reach, not what an untrusted job reaches",
        fix=f"define the job in an untrusted project of the tenant: copy the directory "
        f"`zuul-k8s selftest --write-job DIR` writes (zuul.d/ and {JOB_PLAYBOOK}) into one, "
        "and run it there",
    ),
    Rule(
        id="executor-paths-exposed",
        title="the executor's own paths are bound into builds",
        bwrap_message="(none: the job looks for the executor's paths from inside a build)",
        when=(Failed(EXECUTOR_PATH_CHECKS),),
        cause="a path of the executor reaches every build: zuul.conf's [executor] "
        "untrusted_ro_paths or untrusted_rw_paths (trusted_* for trusted playbooks) names it or "
        "a directory above it, and Zuul binds each into the sandbox (over bwrap's own /proc, "
        "too). What a job can read there (zuul.conf's credentials, the SSH and ZooKeeper keys, "
        "other builds) it can send anywhere",
        fix="remove the executor's own paths (/etc/zuul, /var/lib/zuul and anything below, "
        "the SSH key and ZooKeeper TLS dirs, /proc) from `[executor] untrusted_ro_paths` and "
        "`[executor] untrusted_rw_paths` in zuul.conf; bind only dirs made for jobs. If the "
        "paths the job checked are not your executor's, set its variable zuul_k8s_selftest_paths "
        "(zuul.d/zuul-k8s-selftest.yaml) to your zuul.conf's",
    ),
    Rule(
        id="job-userns-not-bwraps",
        title="builds run without bwrap's own user namespace",
        bwrap_message="(none: the job reads its uid map and tries unshare --user)",
        when=(Failed(("build.uid-map", "build.nested-userns")),),
        cause="Zuul passes --unshare-user --disable-userns to bwrap only when bwrap is 0.8.0 "
        "or newer and user namespaces are enabled (zuul/driver/bubblewrap, _bwrap_command); "
        "without them a build keeps the pod's uid map and may create nested user namespaces",
        fix="set `image` to an executor image with bubblewrap 0.8.0 or newer, and keep user "
        "namespaces enabled on the nodes (user.max_user_namespaces above 0; `zuul-k8s nodes "
        "verify`, playbooks/node-prepare.yaml in check mode, reports each node)",
    ),
    Rule(
        id="job-without-seccomp",
        title="builds run without a seccomp filter",
        bwrap_message="(none: the job reads Seccomp in /proc/self/status)",
        when=(Failed(("build.seccomp",)),),
        cause="the executor pod runs Unconfined (or the node ignores its profile), so nothing "
        "filters the system calls of a build; a kernel bug reachable through a rare syscall is "
        "then reachable from every job",
        fix="`isolation.seccomp: Localhost` (pod: securityContext.seccompProfile {type: "
        "Localhost, localhostProfile: profiles/zuul-executor.json}), with the profile on every "
        f"node by {NODE_PREPARE}",
    ),
    Rule(
        id="job-may-gain-privileges",
        title="builds may gain privileges",
        bwrap_message="(none: the job reads NoNewPrivs in /proc/self/status)",
        when=(Failed(("build.no-new-privs",)),),
        cause="NoNewPrivs is not set in the build: a setuid or file-capability program in the "
        "image raises a job's privileges",
        fix="set the executor container's allowPrivilegeEscalation: false (`zuul-k8s render` "
        "always does) and keep `user.uid: 10001`",
    ),
    Rule(
        id="job-sees-token",
        title="builds see a Kubernetes service-account token",
        bwrap_message="(none: the job looks for serviceaccount/token)",
        when=(Failed(("build.sa-token",)),),
        cause="a service-account token is mounted where builds reach it; with it a job acts "
        "on the cluster as the executor's service account",
        fix="remove the token's directory from `[executor] untrusted_ro_paths` (and "
        "`[executor] untrusted_rw_paths`) in zuul.conf, and keep automountServiceAccountToken: "
        "false on the executor pod and its service account (`zuul-k8s render` sets both), so "
        "the pod holds no token at all",
    ),
)

RULES: tuple[Rule, ...] = PROBE_RULES + JOB_RULES

UNEXPLAINED = Rule(
    id="unexplained",
    title="a failure no rule explains",
    bwrap_message="(any other)",
    when=(),
    cause="",
    fix="read the check's command and stderr below; run the same command in the executor's "
    "pod (`kubectl exec`) to investigate, and report it so a rule can be added",
)


@dataclass(frozen=True)
class Diagnosis:
    """A cause found in one report: the rule, the failed checks it explains, the evidence."""

    rule: Rule
    cause: str
    checks: tuple[str, ...]
    evidence: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.rule.id,
            "title": self.rule.title,
            "cause": self.cause,
            "fix": self.rule.fix,
            "checks": list(self.checks),
            "evidence": list(self.evidence),
        }


def _holds(condition: Condition, report: Report, failed: list[dict[str, Any]]) -> bool:
    if isinstance(condition, Failed):
        return any(check["id"] in condition.checks for check in failed)
    if isinstance(condition, Stderr):
        return any(condition.matches(check) for check in failed)
    fact = report["environment"].get(condition.name)
    return bool(FACT_OPS[condition.op](fact, condition.value))


def _explained(rule: Rule, failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    named = set(rule.also_explains)
    for condition in rule.when:
        if isinstance(condition, Failed):
            named.update(condition.checks)
    stderr = [c for c in rule.when if isinstance(c, Stderr)]
    if rule.also_explains_stderr:
        stderr.append(Stderr(rule.also_explains_stderr))
    return [check for check in failed
            if check["id"] in named or any(c.matches(check) for c in stderr)]


def _evidence(checks: list[dict[str, Any]]) -> tuple[str, ...]:
    """The bwrap line of each explained check, else its message; each line once."""
    lines: list[str] = []
    for check in checks:
        bwrap = [line for line in check["stderr"].splitlines() if line.startswith("bwrap:")]
        line = bwrap[-1] if bwrap else f"{check['id']}: {check['message']}"
        if line not in lines:
            lines.append(line)
    return tuple(lines)


def diagnose(report: Report, rules: tuple[Rule, ...] = RULES) -> list[Diagnosis]:
    """Every rule that holds for the report, then one `unexplained` per failure left over."""
    failed = [check for check in report["checks"] if check["status"] == "fail"]
    found: list[Diagnosis] = []
    covered: set[str] = set()
    for rule in rules:
        if not failed or not all(_holds(c, report, failed) for c in rule.when):
            continue
        checks = _explained(rule, failed)
        covered.update(check["id"] for check in checks)
        found.append(
            Diagnosis(rule, rule.cause, tuple(c["id"] for c in checks), _evidence(checks))
        )
    for check in failed:
        if check["id"] not in covered:
            found.append(Diagnosis(UNEXPLAINED, f"{check['id']} failed: {check['message']}",
                                   (check["id"],), _evidence([check])))
    return found

"""The one table of Pod Security checks: ID, level, and a variant per policy version.

Adding a Kubernetes release means adding rows here: a Variant for a check
whose rule changed, a line in a value table (sysctls, SELinux types), or a new
Check. Nothing else branches on versions. Source: shared/spec/pod-security.md
sections 2.3-2.6, 4 and 5, describing k8s.io/pod-security-admission `policy`
(check_*.go, registry.go) at commit 8f84a87c7f617f64a4ddc1aea24aeeb7a2e07cb8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from zuul_k8s.podsecurity import checks
from zuul_k8s.podsecurity.checks import ALLOWED, CheckResult
from zuul_k8s.podsecurity.pod import PodView
from zuul_k8s.podsecurity.versions import BASELINE, PRIVILEGED, RESTRICTED, format_version


@dataclass(frozen=True)
class Variant:
    """A check's rule from one policy version on, until the check's next variant."""

    since: int  # minor version: 19 means v1.19
    check: Callable[..., CheckResult]
    params: Mapping[str, Any] = field(default_factory=dict)
    # Pods this variant lets through unjudged (Windows pods, user-namespace pods).
    exempt: tuple[Callable[[PodView], bool], ...] = ()
    # Baseline check IDs this restricted variant replaces (spec 2.4).
    overrides: tuple[str, ...] = ()
    _bound: Callable[[PodView], CheckResult] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Bind the params once: run() is the engine's innermost call.
        object.__setattr__(self, "_bound", partial(self.check, **self.params))

    def run(self, pod: PodView) -> CheckResult:
        for exempt in self.exempt:
            if exempt(pod):
                return ALLOWED
        return self._bound(pod)


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    variants: tuple[Variant, ...]  # oldest first
    # What to change, formatted with the selected variant's params.
    fix: str
    # Said instead of the generic words when a newer policy version admits the
    # pod; formatted with {version} (v1.35), {release} (1.35), {level}, {fix}.
    newer_note: str = ""
    newer_fix: str = ""

    def variant_at(self, minor: int) -> Variant | None:
        """The variant with the largest minimum version <= minor (spec 2.3)."""
        chosen = None
        for variant in self.variants:
            if variant.since <= minor:
                chosen = variant
        return chosen


def cumulative(rows: Sequence[tuple[int, Sequence[str]]]) -> list[tuple[int, frozenset[str]]]:
    """(since, values added) rows -> (since, every value allowed from then on)."""
    allowed: frozenset[str] = frozenset()
    out = []
    for since, added in rows:
        allowed = allowed | frozenset(added)
        out.append((since, allowed))
    return out


# --- value tables (spec 5) -----------------------------------------------------------------

# Capabilities a baseline container may add: the container runtimes' default set.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})

# Safe namespaced sysctls, by the policy version that first allows them (spec 4.11).
SYSCTLS_ADDED: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
         "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start")),
    (27, ("net.ipv4.ip_local_reserved_ports",)),
    (29, ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
          "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")),
    (32, ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")),
    (37, ("net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat")),
)

# SELinux types a pod may ask for; "" is the runtime's default (spec 4.9).
SELINUX_TYPES_ADDED: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("", "container_t", "container_init_t", "container_kvm_t")),
    (31, ("container_engine_t",)),
)

PROFILE_TYPES = ("RuntimeDefault", "Localhost")  # seccomp and AppArmor fields

# Volume sources restricted allows, and the known others, in upstream's order of
# naming them (spec 4.13).
RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
})
FORBIDDEN_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
    "scaleIO", "storageos",
)

# Where probes and lifecycle handlers may name a host (spec 4.6).
PROBE_HANDLERS = (
    ("livenessProbe",), ("readinessProbe",), ("startupProbe",),
    ("lifecycle", "postStart"), ("lifecycle", "preStop"),
)

_windows = (checks.windows_pod,)
_user_namespace = (checks.user_namespace_pod,)
_strict_proc_mount = {"allowed": ("Default",)}
_seccomp_types = {"types": PROFILE_TYPES}
_restricted_capabilities = {"must_drop": "ALL", "may_add": ("NET_BIND_SERVICE",)}


# --- the table -------------------------------------------------------------------------------

CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", BASELINE, (
        Variant(0, checks.app_armor_profile, {
            "types": PROFILE_TYPES,
            "annotation_allowed": ("", "runtime/default"),
            "annotation_prefixes": ("localhost/",),
        }),
    ), fix="set appArmorProfile.type to RuntimeDefault or Localhost, or leave it unset; "
           "annotations container.apparmor.security.beta.kubernetes.io/* may only say "
           "runtime/default or localhost/<profile>"),
    Check("capabilities_baseline", BASELINE, (
        Variant(0, checks.capabilities_baseline, {"allowed": BASELINE_CAPABILITIES}),
    ), fix="add only capabilities of the baseline set ({allowed}) in "
           "securityContext.capabilities.add"),
    Check("hostNamespaces", BASELINE, (
        Variant(0, checks.host_namespaces, {"fields": ("hostNetwork", "hostPID", "hostIPC")}),
    ), fix="remove {fields} from the pod spec, or set them to false"),
    Check("hostPathVolumes", BASELINE, (
        Variant(0, checks.host_path_volumes),
    ), fix="replace hostPath volumes with emptyDir, configMap, secret, projected or "
           "persistentVolumeClaim volumes"),
    Check("hostPorts", BASELINE, (
        Variant(0, checks.host_ports),
    ), fix="remove ports[].hostPort (or set it to 0) and reach the port through a Service"),
    Check("hostProbesAndHostLifecycle", BASELINE, (
        Variant(34, checks.host_probes_and_lifecycle, {
            "handlers": PROBE_HANDLERS, "actions": ("httpGet", "tcpSocket"),
        }),
    ), fix="remove host from the httpGet and tcpSocket probes and lifecycle handlers, so "
           "that they target the pod's own IP"),
    Check("privileged", BASELINE, (
        Variant(0, checks.privileged),
    ), fix="remove securityContext.privileged or set it to false; add only the capabilities "
           "the container needs"),
    Check("procMount", BASELINE, (
        Variant(0, checks.proc_mount, _strict_proc_mount),
        Variant(35, checks.proc_mount, _strict_proc_mount, exempt=_user_namespace),
    ), fix="remove securityContext.procMount or set it to Default; an Unmasked /proc is "
           "admitted only at baseline from policy {user_namespace_from}, and only with "
           "spec.hostUsers: false",
       # Every version here comes from the table (the v1.35 variant's exemption), never
       # from a literal: which Kubernetes releases can run the pod at all (feature gates)
       # is not Pod Security's to say, and `validate` reports it (isolation.VERSION_GATES).
       newer_note="Unmasked /proc is admitted at {level} only from policy {version} (with "
                  "hostUsers: false)",
       newer_fix="on Kubernetes {release}+ label the executor's namespace "
                 "pod-security.kubernetes.io/enforce-version: {version} (or latest); until the "
                 "cluster runs Kubernetes {release}, the executor's namespace must enforce "
                 "`privileged` (keeping pod-security.kubernetes.io/warn and audit at baseline)"),
    Check("seLinuxOptions", BASELINE, tuple(
        Variant(since, checks.se_linux_options, {"types": types})
        for since, types in cumulative(SELINUX_TYPES_ADDED)
    ), fix="set seLinuxOptions.type to one of {types} (or leave it unset) and leave "
           "seLinuxOptions.user and role unset"),
    Check("seccompProfile_baseline", BASELINE, (
        Variant(0, checks.seccomp_annotations, {
            "allowed": ("runtime/default", "docker/default"), "prefixes": ("localhost/",),
        }),
        Variant(19, checks.seccomp_profile_baseline, _seccomp_types),
    ), fix="set seccompProfile.type to RuntimeDefault or Localhost, or leave it unset; seccomp "
           "annotations may only say runtime/default, docker/default or localhost/<profile>"),
    Check("sysctls", BASELINE, tuple(
        Variant(since, checks.sysctls, {"allowed": names})
        for since, names in cumulative(SYSCTLS_ADDED)
    ), fix="set only these sysctls: {allowed}"),
    Check("windowsHostProcess", BASELINE, (
        Variant(0, checks.windows_host_process),
    ), fix="remove windowsOptions.hostProcess or set it to false"),
    Check("allowPrivilegeEscalation", RESTRICTED, (
        Variant(8, checks.allow_privilege_escalation),
        Variant(25, checks.allow_privilege_escalation, exempt=_windows),
    ), fix="set securityContext.allowPrivilegeEscalation: false on every container"),
    Check("capabilities_restricted", RESTRICTED, (
        Variant(22, checks.capabilities_restricted, _restricted_capabilities,
                overrides=("capabilities_baseline",)),
        Variant(25, checks.capabilities_restricted, _restricted_capabilities,
                exempt=_windows, overrides=("capabilities_baseline",)),
    ), fix="set securityContext.capabilities.drop: [{must_drop}] on every container and add "
           "back at most {may_add}"),
    Check("procMount_restricted", RESTRICTED, (
        Variant(35, checks.proc_mount, _strict_proc_mount, overrides=("procMount",)),
    ), fix="remove securityContext.procMount or set it to Default: restricted never admits "
           "an Unmasked /proc, so a namespace running Zuul executors must enforce baseline"),
    Check("restrictedVolumes", RESTRICTED, (
        Variant(0, checks.restricted_volumes, {
            "allowed": RESTRICTED_VOLUME_SOURCES, "forbidden": FORBIDDEN_VOLUME_SOURCES,
        }, overrides=("hostPathVolumes",)),
    ), fix="use only {allowed} volumes"),
    Check("runAsNonRoot", RESTRICTED, (
        Variant(0, checks.run_as_non_root),
        Variant(35, checks.run_as_non_root, exempt=_user_namespace),
    ), fix="set securityContext.runAsNonRoot: true on the pod and not false on any container, "
           "with a non-zero runAsUser (the Zuul image's zuul user is 10001)"),
    Check("runAsUser", RESTRICTED, (
        Variant(23, checks.run_as_user),
        Variant(35, checks.run_as_user, exempt=_user_namespace),
    ), fix="set runAsUser to a non-zero uid (the Zuul image's zuul user is 10001)"),
    Check("seccompProfile_restricted", RESTRICTED, (
        Variant(19, checks.seccomp_profile_restricted, _seccomp_types,
                overrides=("seccompProfile_baseline",)),
        Variant(25, checks.seccomp_profile_restricted, _seccomp_types,
                exempt=_windows, overrides=("seccompProfile_baseline",)),
    ), fix="set securityContext.seccompProfile.type to RuntimeDefault or Localhost on the "
           "pod, or on every container"),
)

BY_ID: dict[str, Check] = {check.id: check for check in CHECKS}

# The newest policy version the table knows: `latest` and anything newer mean it (spec 2.2).
CEILING: int = max(variant.since for check in CHECKS for variant in check.variants)



# The kinds of pod a variant may let through unjudged (Variant.exempt), by name.
RELAXATIONS: dict[str, Callable[[PodView], bool]] = {
    "user-namespace": checks.user_namespace_pod,  # spec.hostUsers: false (spec 3.4)
    "windows": checks.windows_pod,  # spec.os.name: windows (spec 3.3)
}


@cache
def admitted_from(check_id: str, relaxation: str) -> int | None:
    """The first policy version (minor) from which a check lets pods of a relaxation
    through, e.g. `admitted_from("procMount", "user-namespace") == 35`; None if no
    version of it does. Read from the table, so version text elsewhere never drifts."""
    check = BY_ID.get(check_id)
    if check is None:
        raise ValueError(f"unknown Pod Security check {check_id!r}; expected one of "
                         f"{', '.join(sorted(BY_ID))}")
    exempt = RELAXATIONS.get(relaxation)
    if exempt is None:
        raise ValueError(f"unknown relaxation {relaxation!r}; expected one of "
                         f"{', '.join(sorted(RELAXATIONS))}")
    return next((v.since for v in check.variants if exempt in v.exempt), None)


@cache
def changes_of(check_id: str) -> tuple[int, ...]:
    """The versions at which a check, or a check replacing it, changes: the only
    versions where its verdict on a pod can change, oldest first."""
    return tuple(sorted({
        variant.since
        for check in CHECKS
        for variant in check.variants
        if check.id == check_id or check_id in variant.overrides
    }))


@cache
def selected(level: str, minor: int) -> tuple[tuple[Check, Variant], ...]:
    """The checks a level runs at a version, in upstream's result order (spec 2.1, 2.4, 2.5)."""
    if level == PRIVILEGED:
        return ()

    def at(wanted: str) -> list[tuple[Check, Variant]]:
        found = []
        for check in CHECKS:
            variant = check.variant_at(minor)
            if check.level == wanted and variant is not None:
                found.append((check, variant))
        return sorted(found, key=lambda pair: pair[0].id)

    baseline = at(BASELINE)
    if level == BASELINE:
        return tuple(baseline)
    restricted = at(RESTRICTED)
    overridden = {check_id for _, variant in restricted for check_id in variant.overrides}
    return tuple(pair for pair in baseline if pair[0].id not in overridden) + tuple(restricted)


def fix_text(check: Check, variant: Variant) -> str:
    """The check's fix, with the values its variant allows written out."""
    words = {
        key: value if isinstance(value, str) else ", ".join(sorted(str(v) or '""' for v in value))
        for key, value in variant.params.items()
        if isinstance(value, (str, tuple, frozenset, list))
    }
    for name in RELAXATIONS:
        since = admitted_from(check.id, name)
        if since is not None:
            words[f"{name.replace('-', '_')}_from"] = format_version(since)
    return check.fix.format(**words)

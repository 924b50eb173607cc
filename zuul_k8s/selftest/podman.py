"""A pod's security settings as `podman run` flags, so podman can stand in for a node.

`podman kube play` ignores `procMount: Unmasked` (podman 4.3), so the kit
translates the settings that decide whether bwrap works itself, one row per
pod field (docs/testing-here.md, "Translating pod settings to podman flags").
Pure: a pod template and container in, flags and notes out; what cannot be
translated faithfully is a UserError naming the field and the fix.
The cluster self-test reuses the same reading of the pod's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zuul_k8s.errors import Problem, UserError, dotted
from zuul_k8s.workloads import PodTemplate

# The capabilities a container gets when its pod adds and drops none.
# Source: docs/testing-here.md, "Translating pod settings to podman flags"
# (CRI-O's default_capabilities; containerd's CRI default set).
RUNTIME_DEFAULT_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "crio": (
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP",
        "NET_BIND_SERVICE", "KILL",
    ),
    "containerd": (
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP",
        "NET_BIND_SERVICE", "KILL", "AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SYS_CHROOT",
    ),
}
RUNTIMES = tuple(RUNTIME_DEFAULT_CAPABILITIES)

# The kubelet maps 65536 IDs per pod, from a base that is a multiple of 65536
# (docs/facts.md, "Node requirements for hostUsers: false"). A fixed base lets
# podman reuse its id-mapped copy of the image between runs.
USERNS_SIZE = 65536
DEFAULT_USERNS_BASE = 32 * USERNS_SIZE

APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


@dataclass(frozen=True)
class Options:
    """What the pod does not say but the node decides."""

    runtime: str = "containerd"  # whose default capabilities apply
    seccomp_root: Path | None = None  # the kubelet's seccomp root, for Localhost profiles
    runtime_default_seccomp: Path | None = None  # the node runtime's RuntimeDefault profile
    userns_base: int = DEFAULT_USERNS_BASE
    host_apparmor: bool = False  # AppArmor enabled on the machine podman runs on
    host_selinux: bool = False


@dataclass(frozen=True)
class Applied:
    """One pod setting and the podman flags it became (none when the default matches)."""

    setting: str
    value: str
    flags: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Translation:
    flags: tuple[str, ...]
    applied: tuple[Applied, ...]
    uid: int | None  # the container's uid, None when the image decides

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(f"{a.setting}: {a.note}" for a in self.applied if a.note)


@dataclass(frozen=True)
class Context:
    """The executor's pod and container, with where each field lives for messages."""

    template: PodTemplate
    container_path: tuple[str | int, ...]
    container: dict[str, Any]
    options: Options
    source: str
    problems: list[Problem] = field(default_factory=list)

    def pod_field(self, *path: str) -> tuple[Any, str]:
        node: Any = self.template.spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node, dotted(self.template.spec_path(*path))

    def container_field(self, *path: str) -> tuple[Any, str]:
        node: Any = self.container.get("securityContext")
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node, dotted((*self.container_path, "securityContext", *path))

    def effective(self, name: str) -> tuple[Any, str]:
        """A field the container's securityContext overrides over the pod's."""
        value, path = self.container_field(name)
        if value is None:
            value, path = self.pod_field("securityContext", name)
        return value, path

    def refuse(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, path, message))


def _user_namespace(ctx: Context) -> Applied:
    host_users, _ = ctx.pod_field("hostUsers")
    if host_users is False:
        base = ctx.options.userns_base
        mapping = f"0:{base}:{USERNS_SIZE}"
        return Applied("hostUsers", "false", ("--uidmap", mapping, "--gidmap", mapping))
    return Applied("hostUsers", "true (unset)" if host_users is None else "true", ())


def _proc_mount(ctx: Context) -> Applied:
    value, _ = ctx.container_field("procMount")
    if value == "Unmasked":
        return Applied("procMount", "Unmasked", ("--security-opt", "unmask=ALL"))
    # podman masks the same paths as the kubelet's Default.
    return Applied("procMount", str(value or "Default (unset)"), ())


def _privileged(ctx: Context) -> Applied | None:
    value, _ = ctx.container_field("privileged")
    if value is True:
        return Applied("privileged", "true", ("--privileged",),
                       "a privileged container proves nothing about an unprivileged one")
    return None


def normalize_capability(name: Any) -> str:
    text = str(name).upper()
    return text[4:] if text.startswith("CAP_") else text


@dataclass(frozen=True)
class Capabilities:
    """A container's capability set: every capability but `dropped`, or exactly `held`."""

    everything: bool
    held: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def flags(self) -> tuple[str, ...]:
        if self.everything:
            return ("--cap-add=all",) + (
                (f"--cap-drop={','.join(self.dropped)}",) if self.dropped else ()
            )
        return ("--cap-drop=all",) + ((f"--cap-add={','.join(self.held)}",) if self.held else ())


def capability_set(runtime: str, add: list[Any], drop: list[Any]) -> Capabilities:
    """The container's capabilities, the way the runtimes compute them.

    Start from the runtime's defaults; ALL in add gives every capability, then
    ALL in drop clears them; then the single adds, then the single drops
    (containerd internal/cri/opts/spec_linux.go WithCapabilities; CRI-O
    internal/factory/container, setupCapabilities).
    """
    added = [normalize_capability(c) for c in add]
    dropped = [normalize_capability(c) for c in drop]
    singles_dropped = tuple(sorted({c for c in dropped if c != "ALL"}))
    if "ALL" in added and "ALL" not in dropped:
        return Capabilities(everything=True, dropped=singles_dropped)
    held = set() if "ALL" in dropped else set(RUNTIME_DEFAULT_CAPABILITIES[runtime])
    held |= {c for c in added if c != "ALL"}
    return Capabilities(everything=False, held=tuple(sorted(held - set(singles_dropped))))


def _capabilities(ctx: Context) -> Applied:
    caps, _ = ctx.container_field("capabilities")
    caps = caps if isinstance(caps, dict) else {}
    add, drop = caps.get("add") or [], caps.get("drop") or []
    result = capability_set(ctx.options.runtime, add, drop)
    shown = f"add {add}, drop {drop} ({ctx.options.runtime} defaults)"
    uid, _ = ctx.effective("runAsUser")
    note = ""
    if (result.everything or result.held) and uid not in (None, 0):
        # CRI-O and containerd clear ambient capabilities for Kubernetes; podman
        # grants a non-root user's added capabilities as ambient ones.
        note = ("podman gives a non-root user these capabilities as ambient ones, which "
                "Kubernetes does not: bwrap may refuse here where the pod would not")
    return Applied("capabilities", shown, result.flags(), note)


def _seccomp(ctx: Context) -> Applied:
    profile, path = ctx.effective("seccompProfile")
    profile = profile if isinstance(profile, dict) else {}
    kind = profile.get("type")
    if kind is None or kind == "Unconfined":
        # Without seccompDefault on the kubelet, an unset profile is Unconfined
        # (docs/facts.md, Seccomp).
        return Applied("seccompProfile", str(kind or "unset"), ("--security-opt", "seccomp=unconfined"))
    if kind == "RuntimeDefault":
        default = ctx.options.runtime_default_seccomp
        if default is None:
            ctx.refuse(f"{path}.type", "RuntimeDefault: pass --runtime-default-seccomp FILE, the "
                       "node runtime's default profile; podman's own default allows unshare and "
                       "mount, so a pass under it would prove nothing")
            return Applied("seccompProfile", "RuntimeDefault", ())
        if not default.is_file():
            ctx.refuse(f"{path}.type", f"--runtime-default-seccomp {default}: no such file")
        return Applied("seccompProfile", "RuntimeDefault",
                       ("--security-opt", f"seccomp={default}"))
    if kind == "Localhost":
        name = profile.get("localhostProfile")
        root = ctx.options.seccomp_root
        if not isinstance(name, str) or not name:
            ctx.refuse(f"{path}.localhostProfile", "type Localhost needs a localhostProfile")
            return Applied("seccompProfile", "Localhost", ())
        file = (root / name) if root is not None else None
        if file is None or not file.is_file():
            ctx.refuse(f"{path}.localhostProfile", f"{name!r} is not a file under the seccomp root "
                       f"{root}; pass --seccomp-root DIR, the dir that holds the nodes' "
                       "/var/lib/kubelet/seccomp/ content")
            return Applied("seccompProfile", f"Localhost {name}", ())
        return Applied("seccompProfile", f"Localhost {name}", ("--security-opt", f"seccomp={file}"))
    ctx.refuse(f"{path}.type", f"unknown seccomp profile type {kind!r}: use Localhost, "
               "RuntimeDefault or Unconfined")
    return Applied("seccompProfile", str(kind), ())


def _no_new_privileges(ctx: Context) -> Applied:
    value, _ = ctx.container_field("allowPrivilegeEscalation")
    if value is False:
        return Applied("allowPrivilegeEscalation", "false", ("--security-opt", "no-new-privileges"))
    return Applied("allowPrivilegeEscalation", "true (unset)" if value is None else str(value), ())


def _user(ctx: Context) -> Applied | None:
    uid, uid_path = ctx.effective("runAsUser")
    gid, _ = ctx.effective("runAsGroup")
    non_root, _ = ctx.effective("runAsNonRoot")
    if uid is None:
        if gid is not None:
            ctx.refuse(uid_path, "runAsGroup without runAsUser cannot be reproduced here: set "
                       "runAsUser too")
        return None
    if non_root is True and uid == 0:
        ctx.refuse(uid_path, "runAsUser 0 with runAsNonRoot: true: the kubelet would refuse to "
                   "start this pod; set runAsUser: 10001 or drop runAsNonRoot")
    user = str(uid) if gid is None else f"{uid}:{gid}"
    return Applied("runAsUser/runAsGroup", user, ("--user", user))


def _groups(ctx: Context) -> Applied | None:
    groups, _ = ctx.pod_field("securityContext", "supplementalGroups")
    fs_group, _ = ctx.pod_field("securityContext", "fsGroup")
    # The kubelet adds fsGroup to the container's supplementary groups.
    wanted = [g for g in [*(groups or []), fs_group] if g is not None]
    if not wanted:
        return None
    flags: list[str] = []
    for group in dict.fromkeys(wanted):
        flags += ["--group-add", str(group)]
    return Applied("supplementalGroups/fsGroup", ",".join(str(g) for g in wanted), tuple(flags))


def _read_only(ctx: Context) -> Applied | None:
    value, _ = ctx.container_field("readOnlyRootFilesystem")
    if value is True:
        return Applied("readOnlyRootFilesystem", "true", ("--read-only",),
                       "podman adds tmpfs on /tmp, /var/tmp and /run, where the pod has volumes")
    return None


def _selinux(ctx: Context) -> Applied | None:
    options, _ = ctx.effective("seLinuxOptions")
    if not isinstance(options, dict) or not options:
        return None
    shown = ",".join(f"{k}={v}" for k, v in options.items())
    if not ctx.options.host_selinux:
        return Applied("seLinuxOptions", shown, (), "not applied: SELinux is not enabled here, "
                       "so this run cannot judge the SELinux gate")
    flags: list[str] = []
    for key in ("user", "role", "type", "level"):
        if key in options:
            flags += ["--security-opt", f"label={key}:{options[key]}"]
    return Applied("seLinuxOptions", shown, tuple(flags))


def _apparmor(ctx: Context) -> Applied | None:
    profile, _ = ctx.effective("appArmorProfile")
    if isinstance(profile, dict) and profile.get("type"):
        kind, name = profile["type"], profile.get("localhostProfile")
    else:
        name = ctx.container.get("name")
        legacy = ctx.template.metadata.get("annotations", {}) or {}
        value = legacy.get(f"{APPARMOR_ANNOTATION}{name}")
        if not isinstance(value, str):
            return None
        kind, name = {
            "runtime/default": ("RuntimeDefault", None),
            "unconfined": ("Unconfined", None),
        }.get(value, ("Localhost", value.removeprefix("localhost/")))
    shown = f"{kind} {name}" if name else str(kind)
    if not ctx.options.host_apparmor:
        return Applied("appArmorProfile", shown, (), "not applied: AppArmor is not enabled here, "
                       "so this run cannot judge the AppArmor gate")
    option = {"Localhost": name, "Unconfined": "unconfined"}.get(str(kind))
    if option is None:
        return Applied("appArmorProfile", shown, ())  # RuntimeDefault: podman's default profile
    return Applied("appArmorProfile", shown, ("--security-opt", f"apparmor={option}"))


def _sysctls(ctx: Context) -> Applied | None:
    sysctls, _ = ctx.pod_field("securityContext", "sysctls")
    if not sysctls:
        return None
    flags: list[str] = []
    for item in sysctls:
        if isinstance(item, dict):
            flags += ["--sysctl", f"{item.get('name')}={item.get('value')}"]
    return Applied("sysctls", ", ".join(flags[1::2]), tuple(flags))


# One row per pod setting that decides whether bwrap works, in flag order.
TRANSLATIONS: tuple[Callable[[Context], Applied | None], ...] = (
    _user_namespace,
    _proc_mount,
    _privileged,
    _capabilities,
    _seccomp,
    _no_new_privileges,
    _user,
    _groups,
    _read_only,
    _selinux,
    _apparmor,
    _sysctls,
)


def translate(template: PodTemplate, container_path: tuple[str | int, ...],
              container: dict[str, Any], options: Options, source: str) -> Translation:
    """The podman flags that give a container the pod's security settings."""
    if options.runtime not in RUNTIME_DEFAULT_CAPABILITIES:
        raise UserError(f"unknown runtime {options.runtime!r}: use one of {', '.join(RUNTIMES)}")
    ctx = Context(template, container_path, container, options, source)
    applied = [row for row in (translate_row(ctx) for translate_row in TRANSLATIONS) if row]
    if ctx.problems:
        raise UserError(ctx.problems)
    uid, _ = ctx.effective("runAsUser")
    flags = tuple(flag for row in applied for flag in row.flags)
    return Translation(flags, tuple(applied), uid if isinstance(uid, int) else None)

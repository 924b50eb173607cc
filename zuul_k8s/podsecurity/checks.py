"""The Pod Security checks: small pure functions of one pod.

Each check reads a PodView, takes the values its version allows as keyword
arguments from the registry's table, and returns a CheckResult whose reason and
detail follow upstream's wording (spec section 8) and whose fields name every
offending field, so a finding can point at it. The rules are those of
shared/spec/pod-security.md section 4, which describes k8s.io/pod-security-admission
`policy` at commit 8f84a87c7f617f64a4ddc1aea24aeeb7a2e07cb8.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from zuul_k8s.podsecurity.pod import (
    ContainerView,
    FieldPath,
    MapKey,
    PodView,
    entries,
    is_zero,
    mapping,
    text,
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    allowed: bool
    reason: str = ""
    detail: str = ""
    fields: tuple[FieldPath, ...] = ()  # from the pod: ("spec", "containers", 0, ...)


ALLOWED = CheckResult(True)

POD_SECURITY: FieldPath = ("spec", "securityContext")
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


# --- wording helpers (spec 8.2) -----------------------------------------------------------


def quoted(items: Iterable[object]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def containers_named(names: Sequence[str]) -> str:
    return f"{plural(len(names), 'container', 'containers')} {quoted(names)}"


def allowed_value(value: object, allowed: Collection[str]) -> bool:
    """Whether a value is one of an allowed list of strings.

    Manifests are untrusted YAML: a list, number or mapping where Kubernetes
    expects a string is not in any allowed list, so it is denied, never a
    TypeError (a list is unhashable, and `in frozenset` would raise).
    """
    return isinstance(value, str) and value in allowed


def denied(reason: str, detail: str, fields: Iterable[FieldPath]) -> CheckResult:
    return CheckResult(False, reason, detail, tuple(fields))


class _Setters:
    """Who set a bad value: the pod, then containers, then annotations (spec 8.3)."""

    def __init__(self) -> None:
        self.pod = False
        self.containers: list[str] = []
        self.annotations = 0
        self.fields: list[FieldPath] = []

    def __bool__(self) -> bool:
        return self.pod or bool(self.containers) or bool(self.annotations)

    def add_pod(self, field: FieldPath) -> None:
        self.pod = True
        self.fields.append(field)

    def add_container(self, container: ContainerView, field: FieldPath) -> None:
        self.containers.append(container.name)
        self.fields.append(field)

    def __str__(self) -> str:
        parts = ["pod"] if self.pod else []
        if self.containers:
            parts.append(containers_named(self.containers))
        if self.annotations:
            parts.append(plural(self.annotations, "annotation", "annotations"))
        return " and ".join(parts)


def _annotation(key: str, value: str) -> str:
    # Upstream writes key=%q; JSON quoting is the same for printable text.
    return f"{key}={json.dumps(value, ensure_ascii=False)}"


# --- baseline --------------------------------------------------------------------------------


def app_armor_profile(
    pod: PodView,
    *,
    types: Collection[str],
    annotation_allowed: Collection[str],
    annotation_prefixes: Sequence[str],
) -> CheckResult:
    """Pod and container profile types, and every AppArmor annotation, each judged alone."""
    setters = _Setters()
    bad_types: set[str] = set()
    profile = mapping(pod.security_field("appArmorProfile"))
    if profile is not None and text(profile.get("type")) not in types:
        setters.add_pod((*POD_SECURITY, "appArmorProfile", "type"))
        bad_types.add(text(profile.get("type")))
    for container in pod.containers:
        profile = mapping(container.security_field("appArmorProfile"))
        if profile is not None and text(profile.get("type")) not in types:
            setters.add_container(
                container, container.at("securityContext", "appArmorProfile", "type")
            )
            bad_types.add(text(profile.get("type")))
    bad_annotations = []
    for key, value in pod.annotations.items():
        if key.startswith(APPARMOR_ANNOTATION_PREFIX) and not (
            value in annotation_allowed or value.startswith(tuple(annotation_prefixes))
        ):
            bad_annotations.append(_annotation(key, value))
            setters.fields.append(("metadata", "annotations", MapKey(key)))
    setters.annotations = len(bad_annotations)
    if not setters:
        return ALLOWED
    values = sorted(bad_types) + sorted(bad_annotations)
    return denied(
        plural(len(values), "forbidden AppArmor profile", "forbidden AppArmor profiles"),
        f"{setters} must not set AppArmor profile type to {quoted(values)}",
        setters.fields,
    )


def capabilities_baseline(pod: PodView, *, allowed: Collection[str]) -> CheckResult:
    """Containers may add only capabilities from the runtime's default set."""
    names: list[str] = []
    caps: set[str] = set()
    fields: list[FieldPath] = []
    for container in pod.containers:
        capabilities = mapping(container.security_field("capabilities")) or {}
        bad = [
            (index, cap)
            for index, cap in enumerate(entries(capabilities.get("add")))
            if not allowed_value(cap, allowed)
        ]
        if bad:
            names.append(container.name)
            caps.update(text(cap) for _, cap in bad)
            fields.extend(
                container.at("securityContext", "capabilities", "add", index) for index, _ in bad
            )
    if not names:
        return ALLOWED
    return denied(
        "non-default capabilities",
        f"{containers_named(names)} must not include {quoted(sorted(caps))} "
        "in securityContext.capabilities.add",
        fields,
    )


def host_namespaces(pod: PodView, *, fields: Sequence[str]) -> CheckResult:
    """hostNetwork, hostPID and hostIPC must not be true."""
    bad = [name for name in fields if pod.spec.get(name) is True]
    if not bad:
        return ALLOWED
    return denied(
        "host namespaces", ", ".join(f"{name}=true" for name in bad), [("spec", n) for n in bad]
    )


def host_path_volumes(pod: PodView) -> CheckResult:
    """No volume may mount a path of the node."""
    bad = [
        (index, volume)
        for index, volume in enumerate(pod.volumes)
        if volume.get("hostPath") is not None
    ]
    if not bad:
        return ALLOWED
    names = [text(volume.get("name")) for _, volume in bad]
    return denied(
        "hostPath volumes",
        f"{plural(len(names), 'volume', 'volumes')} {quoted(names)}",
        [("spec", "volumes", index, "hostPath") for index, _ in bad],
    )


def host_ports(pod: PodView) -> CheckResult:
    """No container port may be bound on the node (hostPort unset or 0)."""
    names: list[str] = []
    ports: set[str] = set()
    fields: list[FieldPath] = []
    for container in pod.containers:
        bad = False
        for index, port in enumerate(entries(container.fields.get("ports"))):
            host_port = (mapping(port) or {}).get("hostPort")
            if host_port is not None and not is_zero(host_port):
                bad = True
                ports.add(text(host_port))
                fields.append(container.at("ports", index, "hostPort"))
        if bad:
            names.append(container.name)
    if not names:
        return ALLOWED
    return denied(
        "hostPort",
        f"{containers_named(names)} {plural(len(names), 'uses', 'use')} "
        f"{plural(len(ports), 'hostPort', 'hostPorts')} {', '.join(sorted(ports))}",
        fields,
    )


def host_probes_and_lifecycle(
    pod: PodView, *, handlers: Sequence[tuple[str, ...]], actions: Sequence[str]
) -> CheckResult:
    """Probes and lifecycle hooks may not reach another host than the pod's."""
    names: set[str] = set()
    hosts: set[str] = set()
    fields: list[FieldPath] = []
    for container in pod.containers:
        for handler_path in handlers:
            handler: dict | None = container.fields
            for key in handler_path:
                handler = mapping(handler.get(key)) if handler is not None else None
            if handler is None:
                continue
            for action in actions:
                host = text((mapping(handler.get(action)) or {}).get("host"))
                if host:
                    names.add(container.name)
                    hosts.add(host)
                    fields.append(container.at(*handler_path, action, "host"))
    if not names:
        return ALLOWED
    return denied(
        "probe or lifecycle host",
        f"{containers_named(sorted(names))} {plural(len(names), 'uses', 'use')} "
        f"{plural(len(hosts), 'probe or lifecycle host', 'probe or lifecycle hosts')} "
        f"{quoted(sorted(hosts))}",
        fields,
    )


def privileged(pod: PodView) -> CheckResult:
    """No container may be privileged."""
    bad = [c for c in pod.containers if c.security_field("privileged") is True]
    if not bad:
        return ALLOWED
    return denied(
        "privileged",
        f"{containers_named([c.name for c in bad])} must not set securityContext.privileged=true",
        [c.at("securityContext", "privileged") for c in bad],
    )


def proc_mount(pod: PodView, *, allowed: Collection[str]) -> CheckResult:
    """procMount must be unset or Default: an unmasked /proc shows the host's kernel state."""
    bad = [
        c
        for c in pod.containers
        if c.security_field("procMount") is not None
        and not allowed_value(c.security_field("procMount"), allowed)
    ]
    if not bad:
        return ALLOWED
    values = sorted({text(c.security_field("procMount")) for c in bad})
    return denied(
        "procMount",
        f"{containers_named([c.name for c in bad])} must not set securityContext.procMount "
        f"to {quoted(values)}",
        [c.at("securityContext", "procMount") for c in bad],
    )


def se_linux_options(pod: PodView, *, types: Collection[str]) -> CheckResult:
    """Each seLinuxOptions alone: an allowed type, and no user or role."""
    if pod.security_field("seLinuxOptions") is None and all(
        c.security_field("seLinuxOptions") is None for c in pod.containers
    ):
        return ALLOWED
    setters = _Setters()
    bad_types: set[str] = set()
    bad_user = bad_role = False

    def judge(options: dict | None, where: FieldPath) -> list[FieldPath]:
        nonlocal bad_user, bad_role
        if options is None:
            return []
        fields: list[FieldPath] = []
        if text(options.get("type")) not in types:
            bad_types.add(text(options.get("type")))
            fields.append((*where, "type"))
        for key in ("user", "role"):
            if text(options.get(key)):
                fields.append((*where, key))
        bad_user = bad_user or bool(text(options.get("user")))
        bad_role = bad_role or bool(text(options.get("role")))
        return fields

    for field in judge(
        mapping(pod.security_field("seLinuxOptions")), (*POD_SECURITY, "seLinuxOptions")
    ):
        setters.add_pod(field)
    for container in pod.containers:
        fields = judge(
            mapping(container.security_field("seLinuxOptions")),
            container.at("securityContext", "seLinuxOptions"),
        )
        if fields:
            setters.add_container(container, fields[0])
            setters.fields.extend(fields[1:])
    if not setters:
        return ALLOWED
    parts = []
    if bad_types:
        parts.append(f"{plural(len(bad_types), 'type', 'types')} {quoted(sorted(bad_types))}")
    if bad_user:
        parts.append("user may not be set")
    if bad_role:
        parts.append("role may not be set")
    return denied(
        "seLinuxOptions",
        f"{setters} set forbidden securityContext.seLinuxOptions: {'; '.join(parts)}",
        setters.fields,
    )


def seccomp_annotations(
    pod: PodView, *, allowed: Collection[str], prefixes: Sequence[str]
) -> CheckResult:
    """Policy v1.0-v1.18: the seccomp annotations of the pod and of visited containers."""
    keys = [SECCOMP_POD_ANNOTATION]
    keys += [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.name for c in pod.containers]
    bad = []
    for key in dict.fromkeys(keys):
        value = pod.annotations.get(key)
        if value is not None and value not in allowed and not value.startswith(tuple(prefixes)):
            bad.append(key)
    if not bad:
        return ALLOWED
    return denied(
        "seccompProfile",
        f"forbidden {plural(len(bad), 'annotation', 'annotations')} "
        + ", ".join(sorted(_annotation(key, pod.annotations[key]) for key in bad)),
        [("metadata", "annotations", MapKey(key)) for key in bad],
    )


def _bad_seccomp_types(
    pod: PodView, types: Collection[str]
) -> tuple[_Setters, set[str], bool, list[ContainerView]]:
    """Explicitly bad profiles; whether the pod-level profile is valid; containers with none."""
    setters = _Setters()
    values: set[str] = set()
    pod_valid = False
    profile = mapping(pod.security_field("seccompProfile"))
    if profile is not None:
        if text(profile.get("type")) in types:
            pod_valid = True
        else:
            setters.add_pod((*POD_SECURITY, "seccompProfile", "type"))
            values.add(text(profile.get("type")))
    unset = []
    for container in pod.containers:
        profile = mapping(container.security_field("seccompProfile"))
        if profile is None:
            unset.append(container)
        elif text(profile.get("type")) not in types:
            setters.add_container(
                container, container.at("securityContext", "seccompProfile", "type")
            )
            values.add(text(profile.get("type")))
    return setters, values, pod_valid, unset


def _seccomp_type_detail(setters: _Setters, values: set[str]) -> str:
    return f"{setters} must not set securityContext.seccompProfile.type to {quoted(sorted(values))}"


def seccomp_profile_baseline(pod: PodView, *, types: Collection[str]) -> CheckResult:
    """Policy v1.19+: a seccomp profile that is set must not be Unconfined (unset is fine)."""
    setters, values, _, _ = _bad_seccomp_types(pod, types)
    if not setters:
        return ALLOWED
    return denied("seccompProfile", _seccomp_type_detail(setters, values), setters.fields)


def sysctls(pod: PodView, *, allowed: Collection[str]) -> CheckResult:
    """Only namespaced sysctls known to be safe; values are not judged."""
    bad = [
        (index, text((mapping(sysctl) or {}).get("name")))
        for index, sysctl in enumerate(entries(pod.security_field("sysctls")))
    ]
    bad = [(index, name) for index, name in bad if name not in allowed]
    if not bad:
        return ALLOWED
    return denied(
        "forbidden sysctls",
        ", ".join(name for _, name in bad),
        [(*POD_SECURITY, "sysctls", index, "name") for index, _ in bad],
    )


def windows_host_process(pod: PodView) -> CheckResult:
    """No Windows HostProcess pod or container, whatever the pod's OS."""
    setters = _Setters()
    options = mapping(pod.security_field("windowsOptions")) or {}
    if options.get("hostProcess") is True:
        setters.add_pod((*POD_SECURITY, "windowsOptions", "hostProcess"))
    for container in pod.containers:
        options = mapping(container.security_field("windowsOptions")) or {}
        if options.get("hostProcess") is True:
            setters.add_container(
                container, container.at("securityContext", "windowsOptions", "hostProcess")
            )
    if not setters:
        return ALLOWED
    return denied(
        "hostProcess",
        f"{setters} must not set securityContext.windowsOptions.hostProcess=true",
        setters.fields,
    )


# --- restricted ------------------------------------------------------------------------------


def restricted_volumes(
    pod: PodView, *, allowed: Collection[str], forbidden: Sequence[str]
) -> CheckResult:
    """Every volume must have a source from the allowed list (spec 4.13)."""
    names: list[str] = []
    kinds: set[str] = set()
    fields: list[FieldPath] = []
    for index, volume in enumerate(pod.volumes):
        if any(volume.get(source) is not None for source in allowed):
            continue
        names.append(text(volume.get("name")))
        kind = next((s for s in forbidden if volume.get(s) is not None), None)
        kinds.add(kind or "unknown")
        fields.append(("spec", "volumes", index, kind) if kind else ("spec", "volumes", index))
    if not names:
        return ALLOWED
    return denied(
        "restricted volume types",
        f"{plural(len(names), 'volume', 'volumes')} {quoted(names)} "
        f"{plural(len(names), 'uses', 'use')} "
        f"{plural(len(kinds), 'restricted volume type', 'restricted volume types')} "
        f"{quoted(sorted(kinds))}",
        fields,
    )


def allow_privilege_escalation(pod: PodView) -> CheckResult:
    """Every container must say allowPrivilegeEscalation: false; unset is not enough."""
    bad = [c for c in pod.containers if c.security_field("allowPrivilegeEscalation") is not False]
    if not bad:
        return ALLOWED
    return denied(
        "allowPrivilegeEscalation != false",
        f"{containers_named([c.name for c in bad])} must set "
        "securityContext.allowPrivilegeEscalation=false",
        [c.at("securityContext", "allowPrivilegeEscalation") for c in bad],
    )


def capabilities_restricted(
    pod: PodView, *, must_drop: str, may_add: Collection[str]
) -> CheckResult:
    """Every container drops ALL, and adds back nothing beyond NET_BIND_SERVICE."""
    no_drop: list[str] = []
    bad_add: list[str] = []
    caps: set[str] = set()
    fields: list[FieldPath] = []
    for container in pod.containers:
        capabilities = mapping(container.security_field("capabilities"))
        if capabilities is None or must_drop not in entries(capabilities.get("drop")):
            no_drop.append(container.name)
            fields.append(container.at("securityContext", "capabilities", "drop"))
        bad = [
            (index, cap)
            for index, cap in enumerate(entries((capabilities or {}).get("add")))
            if not allowed_value(cap, may_add)
        ]
        if bad:
            bad_add.append(container.name)
            caps.update(text(cap) for _, cap in bad)
            fields.extend(
                container.at("securityContext", "capabilities", "add", index) for index, _ in bad
            )
    if not fields:
        return ALLOWED
    parts = []
    if no_drop:
        parts.append(
            f"{containers_named(no_drop)} must set "
            f'securityContext.capabilities.drop=["{must_drop}"]'
        )
    if bad_add:
        parts.append(
            f"{containers_named(bad_add)} must not include {quoted(sorted(caps))} "
            "in securityContext.capabilities.add"
        )
    return denied("unrestricted capabilities", "; ".join(parts), fields)


def run_as_non_root(pod: PodView) -> CheckResult:
    """runAsNonRoot true on the pod or every container; an explicit false anywhere fails."""
    setters = _Setters()
    pod_value = pod.security_field("runAsNonRoot")
    if pod_value is not None and pod_value is not True:
        setters.add_pod((*POD_SECURITY, "runAsNonRoot"))
    unset: list[ContainerView] = []
    for container in pod.containers:
        value = container.security_field("runAsNonRoot")
        if value is None:
            if pod_value is not True:
                unset.append(container)
        elif value is not True:
            setters.add_container(container, container.at("securityContext", "runAsNonRoot"))
    if not setters and not unset:
        return ALLOWED
    parts = []
    if setters:
        parts.append(f"{setters} must not set securityContext.runAsNonRoot=false")
    if unset:
        parts.append(
            f"pod or {containers_named([c.name for c in unset])} "
            "must set securityContext.runAsNonRoot=true"
        )
    return denied(
        "runAsNonRoot != true",
        "; ".join(parts),
        [*setters.fields, *(c.at("securityContext", "runAsNonRoot") for c in unset)],
    )


def run_as_user(pod: PodView) -> CheckResult:
    """No runAsUser 0 on the pod or any container; unset is fine."""
    setters = _Setters()
    if is_zero(pod.security_field("runAsUser")):
        setters.add_pod((*POD_SECURITY, "runAsUser"))
    for container in pod.containers:
        if is_zero(container.security_field("runAsUser")):
            setters.add_container(container, container.at("securityContext", "runAsUser"))
    if not setters:
        return ALLOWED
    return denied("runAsUser=0", f"{setters} must not set runAsUser=0", setters.fields)


def seccomp_profile_restricted(pod: PodView, *, types: Sequence[str]) -> CheckResult:
    """Every container has an allowed seccomp profile, its own or the pod's."""
    setters, values, pod_valid, unset = _bad_seccomp_types(pod, types)
    if pod_valid:
        unset = []
    if not setters and not unset:
        return ALLOWED
    parts = []
    if setters:
        parts.append(_seccomp_type_detail(setters, values))
    if unset:
        parts.append(
            f"pod or {containers_named([c.name for c in unset])} must set "
            f"securityContext.seccompProfile.type to {' or '.join(map(json.dumps, types))}"
        )
    return denied(
        "seccompProfile",
        "; ".join(parts),
        [*setters.fields, *(c.at("securityContext", "seccompProfile", "type") for c in unset)],
    )


# --- exemptions a variant may declare -------------------------------------------------------


def windows_pod(pod: PodView) -> bool:
    """Restricted v1.25+ variants leave Windows pods to Windows' own rules (spec 3.3)."""
    return pod.windows


def user_namespace_pod(pod: PodView) -> bool:
    """v1.35+ variants relax for pods in their own user namespace (spec 3.4)."""
    return pod.user_namespace

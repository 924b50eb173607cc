"""The kit's isolation contract: does a pod template let bwrap work, unprivileged?

Applies to every pod template that runs a zuul-executor container, whoever
rendered it (the kit, the Zuul operator, a Helm chart, a kustomize patch). The
rules come from zuul_k8s.isolation, the tables the renderer builds from.
"""

from __future__ import annotations

import posixpath
from typing import Any

from zuul_k8s import executor_process as daemon
from zuul_k8s import isolation, labelselector, networkpolicy, podfiles
from zuul_k8s.errors import dotted
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.schema_errors import shown
from zuul_k8s.workloads import PodTemplate, as_dict, as_list, object_namespace, pod_template, string_map

SOURCE = "contract"
MISSING = object()


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return MISSING
        node = node[key]
    return node


def _holds(actual: Any, expected: Any) -> bool:
    """A list setting holds when every expected item is there (drop [ALL, X] keeps ALL)."""
    if isinstance(expected, list):
        return isinstance(actual, list) and all(item in actual for item in expected)
    return bool(actual == expected) and type(actual) is type(expected)


def _finding(pod: PodTemplate, severity: Severity, rule: str, path: tuple[str | int, ...],
             message: str, fix: str) -> Finding:
    return Finding(severity, SOURCE, rule, pod.kind, pod.name, dotted(path), message, fix)


def _settings(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    out = []
    for setting in isolation.POD_SETTINGS:
        if not _holds(_get(pod.spec, setting.path), setting.value):
            out.append(_finding(pod, setting.severity, setting.rule, pod.spec_path(*setting.path),
                                setting.why, setting.fix))
    for cpath, container in executors:
        context = container.get("securityContext")
        for setting in isolation.CONTAINER_SETTINGS:
            if not _holds(_get(context, setting.path), setting.value):
                out.append(_finding(pod, setting.severity, setting.rule,
                                    (*cpath, "securityContext", *setting.path), setting.why, setting.fix))
        if _get(context, ("privileged",)) is True:
            out.append(_finding(pod, Severity.ERROR, "privileged", (*cpath, "securityContext", "privileged"),
                                "a privileged executor gives every CI job a path to root on the node; "
                                "the kit's settings make bwrap work without it",
                                "remove privileged: true and apply the kit's securityContext "
                                "(zuul-k8s render shows it)"))
    return out


def _effective_uid(pod: PodTemplate, container: dict[str, Any]) -> int | None:
    for context in (container.get("securityContext"), pod.spec.get("securityContext")):
        uid = _get(context, ("runAsUser",))
        if isinstance(uid, int) and not isinstance(uid, bool):
            return uid
    return None  # the image's user: the upstream image runs as root (facts.md)


def _capabilities(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    out = []
    for cpath, container in executors:
        uid = _effective_uid(pod, container)
        root = uid in (0, None)
        added = _get(container.get("securityContext"), ("capabilities", "add"))
        added = [cap for cap in as_list(added) if isinstance(cap, str)]  # other items: OpenAPI reports them
        path = (*cpath, "securityContext", "capabilities", "add")
        for cap in added:
            if cap not in isolation.ROOT_ONLY_CAPABILITIES:
                out.append(_finding(pod, Severity.ERROR, "capabilities", path,
                                    f"adds {shown(cap)}: bwrap needs no capability but SETFCAP, and that only as root",
                                    f"remove {shown(cap)} from capabilities.add"))
            elif not root:
                out.append(_finding(pod, Severity.ERROR, "capabilities", path,
                                    f"adds {cap!r} for uid {uid}: only a root executor needs it",
                                    f"remove {cap!r} from capabilities.add"))
        if root and not set(isolation.ROOT_ONLY_CAPABILITIES) <= set(added):
            who = "runs as uid 0" if uid == 0 else "sets no runAsUser (the upstream image runs as root)"
            out.append(_finding(pod, Severity.ERROR, "rootNeedsSetfcap", path,
                                f"the executor {who} without SETFCAP: bwrap cannot map root "
                                "(`bwrap: setting up uid map: Operation not permitted`)",
                                "add SETFCAP to capabilities.add, or run as uid 10001 (user.uid in the "
                                "kit's config) which needs no capability"))
    return out


def _seccomp(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    out = []
    pod_profile = _get(pod.spec, ("securityContext", "seccompProfile", "type"))
    for cpath, container in executors:
        own = _get(container, ("securityContext", "seccompProfile", "type"))
        if own is not MISSING:
            kind, path = own, (*cpath, "securityContext", "seccompProfile", "type")
        else:
            kind, path = pod_profile, pod.spec_path("securityContext", "seccompProfile", "type")
        if kind is MISSING:
            verdict = isolation.SECCOMP_VERDICTS[None]
        elif isinstance(kind, str) and kind in isolation.SECCOMP_VERDICTS:
            verdict = isolation.SECCOMP_VERDICTS[kind]
        else:
            verdict = (Severity.ERROR, f"unknown seccomp profile type {shown(kind)}",
                       "use type Localhost with the kit's profile")
        if verdict:
            severity, why, fix = verdict
            out.append(_finding(pod, severity, "seccomp", path, why, fix))
    return out


def _grace_period(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    out = []
    for cpath, container in executors:
        if "terminationGracePeriodSeconds" in container:
            out.append(_finding(pod, Severity.ERROR, "gracePeriodOnContainer",
                                (*cpath, "terminationGracePeriodSeconds"),
                                "terminationGracePeriodSeconds on a container does nothing: running "
                                "builds are killed after the default 30 s",
                                "move it to the pod: spec.terminationGracePeriodSeconds"))
    if not isinstance(pod.spec.get("terminationGracePeriodSeconds"), int):
        out.append(_finding(pod, Severity.WARNING, "gracePeriod", pod.spec_path("terminationGracePeriodSeconds"),
                            "no pod terminationGracePeriodSeconds: a stopping executor gets 30 s "
                            "before its running builds are killed",
                            "set spec.terminationGracePeriodSeconds to the longest build time "
                            "(gracefulStopSeconds in the kit's config)"))
    return out


def _node_access(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    """Host namespaces, node volumes and mount propagation: ways to the node that bwrap does not guard."""
    out = []
    for setting in isolation.HOST_NAMESPACES:
        if _get(pod.spec, setting.path) is True:
            out.append(_finding(pod, setting.severity, setting.rule, pod.spec_path(*setting.path),
                                setting.why, setting.fix))
    for index, volume in enumerate(as_list(pod.spec.get("volumes"))):
        for kind, (why, fix) in isolation.NODE_VOLUMES.items():
            if isinstance(volume, dict) and kind in volume:
                out.append(_finding(pod, Severity.ERROR, kind, pod.spec_path("volumes", index, kind), why, fix))
    for cpath, container in executors:
        for index, mount in enumerate(as_list(container.get("volumeMounts"))):
            if as_dict(mount).get("mountPropagation") == isolation.NODE_PROPAGATION:
                out.append(_finding(pod, Severity.ERROR, "mountPropagation",
                                    (*cpath, "volumeMounts", index, "mountPropagation"),
                                    "Bidirectional propagation carries mounts made in the executor back to "
                                    "the node (and needs a privileged container)",
                                    "remove mountPropagation (None is the default)"))
    return out


def _confinement(pod: PodTemplate, executors: list[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[Finding]:
    """SELinux and AppArmor settings, pod or container level, that switch confinement off."""
    contexts: list[tuple[tuple[str | int, ...], Any]] = [(pod.spec_path("securityContext"),
                                                          pod.spec.get("securityContext"))]
    contexts += [((*cpath, "securityContext"), c.get("securityContext")) for cpath, c in executors]
    out = []
    for path, context in contexts:
        selinux = _get(context, ("seLinuxOptions", "type"))
        if selinux in isolation.UNCONFINED_SELINUX_TYPES:
            out.append(_finding(pod, Severity.ERROR, "selinux", (*path, "seLinuxOptions", "type"),
                                f"SELinux type {selinux} lifts SELinux confinement from the executor and its jobs",
                                "remove it (container_t with the kit's module) or use container_engine_t"))
        if _get(context, ("appArmorProfile", "type")) == "Unconfined":
            out.append(_finding(pod, Severity.WARNING, "apparmor", (*path, "appArmorProfile", "type"),
                                "no AppArmor profile: bwrap works, but jobs lose the profile's limits, and "
                                "Pod Security baseline denies it", "use the kit's Localhost profile "
                                "(isolation.apparmor: Localhost)"))
    for key, value in string_map(pod.metadata.get("annotations")).items():
        container = key.removeprefix(isolation.APPARMOR_ANNOTATION)
        if key.startswith(isolation.APPARMOR_ANNOTATION) and value == "unconfined" and any(
                c.get("name") == container for _, c in executors):
            out.append(_finding(pod, Severity.WARNING, "apparmor", (*pod.path, "metadata", "annotations", key),
                                "the AppArmor annotation runs the executor unconfined",
                                "remove the annotation; set appArmorProfile {type: Localhost, "
                                "localhostProfile: zuul-executor}"))
    return out


def _selector(obj: dict[str, Any], pod: PodTemplate) -> list[Finding]:
    """A workload whose selector misses its own pods never becomes ready (the API server refuses it)."""
    if pod.path != ("spec", "template"):
        return []  # Pod, PodTemplate, CronJob (Job's selector is generated): nothing to match
    selector = as_dict(as_dict(obj.get("spec")).get("selector"))
    if "matchLabels" not in selector:
        return []
    wanted = string_map(selector.get("matchLabels"))
    labels = string_map(pod.metadata.get("labels"))
    wrong = sorted(k for k, v in wanted.items() if labels.get(k) != v)
    if not wrong:
        return []
    return [_finding(pod, Severity.ERROR, "selectorMismatch", ("spec", "selector", "matchLabels"),
                     f"selects {', '.join(f'{k}={shown(wanted[k])}' for k in wrong)}, which the pod "
                     "template's labels do not carry: the workload, its Service and its "
                     "PodDisruptionBudget miss the executor pods",
                     "give spec.template.metadata.labels the selector's labels (in the kit's config, "
                     "do not set the selector labels under `labels`)")]


Executors = list[tuple[tuple[str | int, ...], dict[str, Any]]]


def _strings(value: Any) -> list[str]:
    return [item for item in as_list(value) if isinstance(item, str)]


def _pid1(pod: PodTemplate, executors: Executors) -> list[Finding]:
    """An init must be PID 1 (it reaps), and pass SIGTERM to zuul-executor alone."""
    if pod.spec.get("shareProcessNamespace") is True:
        return []  # the pod's pause process is PID 1 and reaps orphans
    out = []
    fix = (f"set command: {list(daemon.INIT_COMMAND)} and args: [zuul-executor, -f] "
           "(zuul-k8s render shows it)")
    for cpath, container in executors:
        command = _strings(container.get("command"))
        if not command:
            out.append(_finding(pod, Severity.WARNING, "pid1Signals", (*cpath, "command"),
                                "no command: the image's ENTRYPOINT is PID 1; upstream's is dumb-init in its "
                                "default mode, which sends the kubelet's SIGTERM to zuul-executor's whole "
                                "process group, so the log streamer dies at once and live logs stop while "
                                "running builds drain", fix))
            continue
        program = posixpath.basename(command[0])
        if program not in daemon.INITS:
            out.append(_finding(pod, Severity.ERROR, "pid1", (*cpath, "command"),
                                f"command starts {shown(command[0])}, replacing the image's ENTRYPOINT "
                                "(dumb-init): it runs as PID 1, where nothing reaps the ssh-agent every "
                                "build leaves, and zombies pile up", fix))
        elif program == "dumb-init":
            flags = command[1:command.index("--")] if "--" in command else command[1:2]
            if not set(flags) & daemon.SINGLE_CHILD_FLAGS:
                out.append(_finding(pod, Severity.WARNING, "pid1Signals", (*cpath, "command"),
                                    "dumb-init without --single-child sends the kubelet's SIGTERM to "
                                    "zuul-executor's whole process group: the log streamer dies at once and "
                                    "live logs stop while running builds drain", fix))
    return out


def _startup_probe(pod: PodTemplate, executors: Executors) -> list[Finding]:
    out = []
    for cpath, container in executors:
        if isinstance(container.get("livenessProbe"), dict) and not isinstance(container.get("startupProbe"), dict):
            out.append(_finding(pod, Severity.WARNING, "startupProbe", (*cpath, "startupProbe"),
                                "a liveness probe without a startupProbe: zuul-executor serves /health/* only "
                                "after it has connected to ZooKeeper, so an executor waiting for ZooKeeper "
                                "is killed over and over (CrashLoopBackOff)",
                                "add a startupProbe on /health/live whose budget covers a ZooKeeper outage "
                                "(the kit's: every 10 s, 90 failures)"))
    return out


def _ssh_key(pod: PodTemplate, executors: Executors) -> list[Finding]:
    """The key where Zuul's default private_key_file points, in a mode ssh-add accepts."""
    out = []
    for cpath, container in executors:
        mounts = podfiles.container_mounts(pod.spec, container)
        uid = _effective_uid(pod, container)
        home = daemon.home_of(container.get("env"), uid)
        if home is not None:
            key = posixpath.join(home, ".ssh", daemon.SSH_KEY_FILE)
            mount = podfiles.covering(mounts, key)
            if mount is None or mount.source not in podfiles.OBJECT_SOURCES:
                out.append(_finding(pod, Severity.WARNING, "sshKeyPath", (*cpath, "volumeMounts"),
                                    f"Zuul's default private_key_file ~/.ssh/id_rsa is {key} here (HOME={home}), "
                                    "where no Secret is mounted: every build's ssh-add fails unless zuul.conf "
                                    "sets [executor] private_key_file to a mounted key",
                                    f"mount the key's Secret at {posixpath.dirname(key)} with the key as "
                                    "id_rsa (the kit's secrets.sshKey), or check zuul.conf with "
                                    "`zuul-k8s validate --zuul-conf`"))
        if uid not in (0, None):
            continue  # OpenSSH checks the mode of a key the running user owns: here, root's only
        group = _get(pod.spec, ("securityContext", "fsGroup"))
        for mount in mounts:
            if mount.source != "secret" or "ssh" not in mount.path:
                continue
            if group is not MISSING:
                out.append(_finding(pod, Severity.ERROR, "sshKeyMode", pod.spec_path("securityContext", "fsGroup"),
                                    f"a root executor with fsGroup: the kubelet makes the key under {mount.path} "
                                    "group-readable whatever its mode, and ssh-add refuses a key root owns that "
                                    "others may read (`Permissions 0440 ... are too open`)",
                                    "remove fsGroup (root needs none) and give the key mode 0400"))
            elif mount.mode is not None and mount.mode & 0o077:
                out.append(_finding(pod, Severity.ERROR, "sshKeyMode", (*cpath, "volumeMounts"),
                                    f"the key under {mount.path} has mode {mount.mode:04o}; root owns it, and "
                                    "ssh-add refuses a key others may read (`are too open`)",
                                    "give the Secret volume defaultMode 0400 (256)"))
    return out


def _state_disk(pod: PodTemplate, executors: Executors) -> list[Finding]:
    """Disk limits Zuul's governor cannot see evict the pod with every running build."""
    out = []
    volumes = as_list(pod.spec.get("volumes"))
    for cpath, container in executors:
        resources = as_dict(container.get("resources"))
        if "ephemeral-storage" in as_dict(resources.get("limits")):
            out.append(_finding(pod, Severity.WARNING, "diskLimit",
                                (*cpath, "resources", "limits", "ephemeral-storage"),
                                "an ephemeral-storage limit evicts the executor with every running build when "
                                "crossed, and Zuul's disk governor (statvfs of the node's disk) cannot see it",
                                "remove the limit; request the disk instead, and let min_avail_hdd and "
                                "disk_limit_per_job in zuul.conf govern it"))
        state = podfiles.covering(podfiles.container_mounts(pod.spec, container), daemon.STATE_PATH)
        if state is None or state.source != "emptyDir":
            continue
        for index, volume in enumerate(volumes):
            volume = as_dict(volume)
            if volume.get("name") == state.volume and as_dict(volume.get("emptyDir")).get("sizeLimit") is not None:
                out.append(_finding(pod, Severity.WARNING, "stateSizeLimit",
                                    pod.spec_path("volumes", index, "emptyDir", "sizeLimit"),
                                    "the state emptyDir's sizeLimit evicts the executor with every running "
                                    "build when crossed; Zuul's disk governor measures the node's disk and "
                                    "never sees it coming",
                                    "remove sizeLimit and request the size as ephemeral-storage instead"))
        if "ephemeral-storage" not in as_dict(resources.get("requests")):
            out.append(_finding(pod, Severity.WARNING, "stateDiskRequest",
                                (*cpath, "resources", "requests", "ephemeral-storage"),
                                "the state is an emptyDir on the node's disk, but no ephemeral-storage request "
                                "reserves it: the executor may land on a node whose disk is nearly full",
                                "request the state's size as resources.requests.ephemeral-storage (the kit: "
                                "state.size)"))
    return out


def _read_only_root(pod: PodTemplate, executors: Executors) -> list[Finding]:
    out = []
    for cpath, container in executors:
        if _get(container.get("securityContext"), ("readOnlyRootFilesystem",)) is not True:
            continue
        mount = podfiles.covering(podfiles.container_mounts(pod.spec, container), daemon.TMP_PATH)
        if mount is None or mount.read_only:
            out.append(_finding(pod, Severity.ERROR, "readOnlyTmp", (*cpath, "volumeMounts"),
                                "a read-only root file system without a writable /tmp: Zuul's startup bwrap "
                                "check (work dir /tmp) and every build's ssh-agent socket fail",
                                "mount an emptyDir at /tmp"))
    return out


def _fs_group_policy(pod: PodTemplate, obj: dict[str, Any]) -> list[Finding]:
    """fsGroup on a persistent volume re-owns every file on every start unless told otherwise."""
    context = as_dict(pod.spec.get("securityContext"))
    if "fsGroup" not in context or context.get("fsGroupChangePolicy") == "OnRootMismatch":
        return []
    claims = as_list(as_dict(obj.get("spec")).get("volumeClaimTemplates"))
    if not claims and not any("persistentVolumeClaim" in as_dict(v) for v in as_list(pod.spec.get("volumes"))):
        return []
    return [_finding(pod, Severity.WARNING, "fsGroupChangePolicy",
                     pod.spec_path("securityContext", "fsGroupChangePolicy"),
                     "fsGroup on a persistent volume without fsGroupChangePolicy: OnRootMismatch: the "
                     "kubelet re-owns every file of the git cache on every start, which can take minutes",
                     "set securityContext.fsGroupChangePolicy: OnRootMismatch")]


def service_findings(objects: list[dict[str, Any]]) -> list[Finding]:
    """A StatefulSet executor's governing Service must keep a draining pod's DNS name."""
    out = []
    for obj in objects:
        pod = pod_template(obj)
        if obj.get("kind") != "StatefulSet" or pod is None:
            continue
        if not any(isolation.is_executor_container(c) for _, c in pod.containers()):
            continue
        name = as_dict(obj.get("spec")).get("serviceName")
        for service in objects:
            spec = as_dict(service.get("spec"))
            if (service.get("kind") != "Service" or as_dict(service.get("metadata")).get("name") != name
                    or spec.get("publishNotReadyAddresses") is True):
                continue
            out.append(Finding(Severity.WARNING, SOURCE, "publishNotReadyAddresses", "Service", str(name),
                               "spec.publishNotReadyAddresses",
                               f"StatefulSet/{pod.name}'s executors lose their DNS names while they drain (a "
                               "terminating pod is not ready), so zuul-web cannot stream the logs of the "
                               "builds they are finishing",
                               "set spec.publishNotReadyAddresses: true"))
    return out


# Each rule reads one pod template and its executor containers.
POD_RULES = (_settings, _capabilities, _seccomp, _grace_period, _node_access, _confinement,
             _pid1, _startup_probe, _ssh_key, _state_disk, _read_only_root)


def _version(minor: int, pod: PodTemplate) -> list[Finding]:
    gate = isolation.version_gate(minor)
    if gate.severity is None:
        return []
    return [_finding(pod, gate.severity, "kubernetesVersion", pod.spec_path("hostUsers"),
                     f"Kubernetes 1.{minor}: {gate.message}", gate.fix)]


def pod_findings(obj: dict[str, Any], minor: int) -> list[Finding]:
    pod = pod_template(obj)
    if pod is None:
        return []
    executors = [(path, c) for path, c in pod.containers() if isolation.is_executor_container(c)]
    if not executors:
        return []
    found = [f for rule in POD_RULES for f in rule(pod, executors)]
    return found + _fs_group_policy(pod, obj) + _selector(obj, pod) + _version(minor, pod)


def _policies(pod: PodTemplate, namespace: str | None, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The specs of the NetworkPolicies among the objects that select the pod (in its namespace)."""
    labels = string_map(pod.metadata.get("labels"))
    found = []
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        where = object_namespace(obj)
        if namespace is not None and where is not None and where != namespace:
            continue
        spec = as_dict(obj.get("spec"))
        if labelselector.selects(spec.get("podSelector"), labels):
            found.append(spec)
    return found


def network_policy_findings(objects: list[dict[str, Any]]) -> list[Finding]:
    """Executor pods no NetworkPolicy in the set selects: job code reaches whatever the pod can."""
    out = []
    for obj in objects:
        pod = pod_template(obj)
        if pod is None or not any(isolation.is_executor_container(c) for _, c in pod.containers()):
            continue
        policies = _policies(pod, object_namespace(obj), objects)
        if not policies:
            out.append(_finding(pod, Severity.WARNING, "networkPolicy", (*pod.path, "metadata", "labels"),
                                "no NetworkPolicy here selects the executor pods: job code runs in the "
                                "pod's network namespace and reaches whatever the pod can (the cloud "
                                "metadata service, the API server, the cluster's pods)",
                                "render the kit's (networkPolicy.enabled: true) or add one; a policy "
                                "already in the cluster is not seen here"))
            continue
        open_to = [a for a in networkpolicy.METADATA_ADDRESSES if networkpolicy.egress_allows(policies, a)]
        if open_to:
            out.append(_finding(pod, Severity.WARNING, "metadataReachable", (*pod.path, "metadata", "labels"),
                                f"the NetworkPolicies selecting the executor pods let job code reach the "
                                f"cloud metadata service ({', '.join(open_to)}), which hands out the node's "
                                "cloud credentials",
                                "except " + " and ".join(networkpolicy.METADATA_CIDRS) + " from every egress "
                                "ipBlock, and give no egress rule without `to` (the kit's policy does both)"))
    return out


def findings(objects: list[dict[str, Any]], minor: int) -> list[Finding]:
    return ([f for obj in objects for f in pod_findings(obj, minor)] + network_policy_findings(objects)
            + service_findings(objects))

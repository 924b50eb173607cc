"""The kit's isolation contract: does a pod template let bwrap work, unprivileged?

Applies to every pod template that runs a zuul-executor container, whoever
rendered it (the kit, the Zuul operator, a Helm chart, a kustomize patch). The
rules come from zuul_k8s.isolation, the tables the renderer builds from.
"""

from __future__ import annotations

from typing import Any

from zuul_k8s import isolation
from zuul_k8s.errors import dotted
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.schema_errors import shown
from zuul_k8s.workloads import PodTemplate, as_dict, as_list, pod_template, string_map

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


# Each rule reads one pod template and its executor containers.
POD_RULES = (_settings, _capabilities, _seccomp, _grace_period)


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
    return found + _selector(obj, pod) + _version(minor, pod)


def findings(objects: list[dict[str, Any]], minor: int) -> list[Finding]:
    return [f for obj in objects for f in pod_findings(obj, minor)]

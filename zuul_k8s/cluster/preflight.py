"""Is the cluster ready for unprivileged executors? Judgement as data over the
API's own dicts (version, nodes, namespace, secrets, access reviews), and a
thin fetch layer.

Sources for the gates: docs facts.md ("Node requirements for hostUsers:
false", "Kubernetes feature gates"), read through zuul_k8s.isolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zuul_k8s import isolation
from zuul_k8s.cluster import access, takeover
from zuul_k8s.cluster.access import Rule
from zuul_k8s.cluster.takeover import Takeover
from zuul_k8s.findings import Finding, Severity

# facts.md: hostUsers: false needs Linux 6.3+ (tmpfs idmap mounts) and CRI-O 1.25+
# or containerd 2.0+ (containerd 1.7 and older silently ignore it).
MIN_KERNEL = (6, 3)
RUNTIME_MINIMUMS: dict[str, tuple[int, ...]] = {"containerd": (2, 0), "cri-o": (1, 25)}

# Every rule any config may need, as (verb, group, resource, namespaced): the table of
# docs/requirements.md. `gather` reviews access.required(objects), the config's own subset.
REQUIRED_ACCESS: tuple[tuple[str, str, str, bool], ...] = tuple(
    (r.verb, r.group, r.resource, r.namespaced) for r in access.for_kinds(access.RENDERED_KINDS))

# Keys each Secret the config names must hold (config key -> fixed keys, or the config's `key`).
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "zuulConf": (),
    "sshKey": (),
    "zookeeperTls": ("ca.crt", "tls.crt", "tls.key"),
}


@dataclass(frozen=True)
class Check:
    scope: str  # "cluster", "node NAME", "namespace NAME", "secret NAME", "access"
    name: str
    severity: Severity | None  # None: ok
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "ok" if self.severity is None else self.severity.value

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR


def numbers(text: str, parts: int) -> tuple[int, ...] | None:
    match = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    if not match:
        return None
    values = tuple(int(x) for x in match.group(1).split("."))
    return (values + (0,) * parts)[:parts]


def api_version_check(version: dict[str, Any]) -> Check:
    minor = server_minor(version)
    git = str(version.get("gitVersion", "?"))
    if version.get("emulationMinor") not in (None, "", version.get("minor")):
        git += f" emulating 1.{version['emulationMinor']}"
    if minor is None:
        return Check("cluster", "API server", Severity.WARNING, f"{git}: cannot read the version")
    gate = isolation.version_gate(minor)
    return Check("cluster", "API server", gate.severity, f"{git}" + (f": {gate.message}"
                 if gate.severity else ": user namespaces and procMount on by default"), gate.fix)


def kernel_check(scope: str, info: dict[str, Any]) -> Check:
    text = str(info.get("kernelVersion", ""))
    found = numbers(text, 2)
    if found is None:
        return Check(scope, "kernel", Severity.WARNING, f"{text!r}: not a version")
    if found < MIN_KERNEL:
        return Check(scope, "kernel", Severity.ERROR, f"{text}: hostUsers: false needs Linux "
                     f"{'.'.join(map(str, MIN_KERNEL))}+ (idmap mounts)",
                     "upgrade the node's kernel, or keep the executor off this node (nodeSelector)")
    return Check(scope, "kernel", None, text)


def runtime_check(scope: str, info: dict[str, Any]) -> Check:
    text = str(info.get("containerRuntimeVersion", ""))
    name, _, version = text.partition("://")
    minimum = RUNTIME_MINIMUMS.get(name)
    wanted = " or ".join(f"{n} {'.'.join(map(str, v))}+" for n, v in RUNTIME_MINIMUMS.items())
    if minimum is None:
        return Check(scope, "runtime", Severity.ERROR, f"{text}: not a runtime known to honour "
                     f"hostUsers: false", f"run {wanted}")
    found = numbers(version, len(minimum))
    if found is None or found < minimum:
        return Check(scope, "runtime", Severity.ERROR, f"{text}: {name} before "
                     f"{'.'.join(map(str, minimum))} ignores hostUsers: false",
                     f"upgrade the node to {wanted}")
    return Check(scope, "runtime", None, text)


def kubelet_check(scope: str, info: dict[str, Any]) -> Check:
    text = str(info.get("kubeletVersion", ""))
    found = numbers(text, 2)
    if found is None:
        return Check(scope, "kubelet", Severity.WARNING, f"{text!r}: not a version")
    gate = isolation.version_gate(found[1])
    return Check(scope, "kubelet", gate.severity, text + (f": {gate.message}" if gate.severity
                                                          else ""), gate.fix)


def os_check(scope: str, node: dict[str, Any]) -> Check:
    info = node.get("status", {}).get("nodeInfo", {})
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in node.get("status", {}).get("conditions") or [])
    text = f"{info.get('osImage', '?')} ({info.get('operatingSystem', '?')})"
    if info.get("operatingSystem", "linux") != "linux":
        return Check(scope, "os", Severity.ERROR, text, "the executor runs on Linux nodes only")
    if not ready:
        return Check(scope, "os", Severity.WARNING, text + ", node not Ready")
    return Check(scope, "os", None, text)


# The kubelet (1.30+) admits `hostUsers: false` only when the pod's runtime handler
# reports the userNamespaces feature, read from the runtime's CRI status into
# node.status.runtimeHandlers; a runtime that reports no handlers (containerd 1.7) is
# refused too (kubernetes pkg/kubelet/kubelet_getters.go HandlerSupportsUserNamespaces,
# pkg/kubelet/userns/userns_manager.go: "can't set `spec.hostUsers: false`, runtime does
# not support user namespaces", shown as a FailedCreatePodSandBox event).
KUBELET_READS_RUNTIME_HANDLERS = (1, 30)
USERNS_REFUSED = "can't set `spec.hostUsers: false`, runtime does not support user namespaces"


def userns_check(scope: str, status: dict[str, Any], handler: str = "") -> Check:
    """Does the node's runtime handler for the pod say it supports user namespaces?"""
    handlers = status.get("runtimeHandlers") or []
    label = f"handler {handler!r}" if handler else "the default handler"
    fix = ("run the executor on nodes whose runtime supports user namespaces (containerd 2.0+, "
           "CRI-O 1.25+, with runc 1.2+ or crun 1.9+): scheduling.nodeSelector")
    found = next((h for h in handlers if isinstance(h, dict) and h.get("name", "") == handler), None)
    if found is None:
        kubelet = numbers(str(status.get("nodeInfo", {}).get("kubeletVersion", "")), 2)
        if not handlers and kubelet is not None and kubelet < KUBELET_READS_RUNTIME_HANDLERS:
            return Check(scope, "user namespaces", Severity.WARNING,
                         "this kubelet predates status.runtimeHandlers: support is judged by the "
                         "runtime's version alone")
        known = ", ".join(repr(h.get("name", "")) for h in handlers if isinstance(h, dict))
        what = (f"no handler named {handler!r} in status.runtimeHandlers (it reports {known})"
                if known else "no runtime handlers (status.runtimeHandlers is empty), as runtimes "
                "before containerd 2.0 and CRI-O 1.30 do")
        return Check(scope, "user namespaces", Severity.ERROR,
                     f"the runtime reports {what}: the kubelet refuses the pod ({USERNS_REFUSED})", fix)
    if (found.get("features") or {}).get("userNamespaces") is True:
        return Check(scope, "user namespaces", None, f"{label} reports userNamespaces")
    return Check(scope, "user namespaces", Severity.ERROR,
                 f"{label} does not report userNamespaces: the kubelet refuses the pod "
                 f"({USERNS_REFUSED})", fix)


NODE_CHECKS = (kernel_check, runtime_check, kubelet_check)


def node_checks(node: dict[str, Any]) -> list[Check]:
    scope = f"node {node['metadata']['name']}"
    status = node.get("status", {})
    info = status.get("nodeInfo", {})
    return ([check(scope, info) for check in NODE_CHECKS] + [userns_check(scope, status)]
            + [os_check(scope, node)])


def _tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    rules = {"In": lambda: labels.get(key) in values, "NotIn": lambda: labels.get(key) not in values,
             "Exists": lambda: key in labels, "DoesNotExist": lambda: key not in labels}
    return rules.get(str(op), lambda: True)()


def eligibility(node: dict[str, Any], pod_spec: dict[str, Any]) -> str | None:
    """Why the executor's pod cannot land on this node, or None when it can."""
    labels = node["metadata"].get("labels") or {}
    if node.get("spec", {}).get("unschedulable"):  # `kubectl cordon`: the scheduler skips it
        return (f"cordoned (spec.unschedulable); `kubectl uncordon {node['metadata']['name']}` "
                "to use it")
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(
                taint, pod_spec.get("tolerations") or []):
            return f"taint {taint.get('key')}={taint.get('value', '')}:{taint['effect']} not tolerated"
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    fields = {"metadata.name": node["metadata"]["name"]}
    if terms and not any(
            all(_expression(e, labels) for e in t.get("matchExpressions") or [])
            and all(_expression(e, fields) for e in t.get("matchFields") or []) for t in terms):
        return "required node affinity does not match"
    return None


def server_minor(version: dict[str, Any]) -> int | None:
    """The minor the API server behaves as: its emulated version when it runs with
    --emulated-version (/version's emulationMinor, apimachinery pkg/version), else its own."""
    for key in ("emulationMinor", "minor"):
        found = numbers(str(version.get(key) or "").rstrip("+"), 1)
        if found is not None:
            return found[0]
    return None


def namespace_check(namespace: dict[str, Any] | None, name: str, creates: bool,
                    template: dict[str, Any], server: int | None = None,
                    kit_labels: dict[str, str] | None = None) -> Check:
    """Would the namespace's Pod Security admission let the executor's pods in?

    A version label newer than the server (or `latest`) is evaluated by the server's own
    newest rules: a 1.34 server reads `enforce-version: v1.35` as its latest, v1.34."""
    from zuul_k8s.podsecurity import CEILING, evaluate_pod
    from zuul_k8s.podsecurity.versions import format_version, label_minor

    scope = f"namespace {name}"
    if namespace is None and not creates:
        return Check(scope, "pod security", Severity.ERROR, "does not exist",
                     "create it, or set namespace.create: true")
    if namespace is None:  # judge the labels `apply` would give it
        labels = kit_labels or {}
        source = "does not exist yet; with the labels `zuul-k8s apply` gives it, "
    else:
        labels = namespace["metadata"].get("labels") or {}
        source = ""
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    if "pod-security.kubernetes.io/enforce" not in labels:
        source += ("no enforce label, so the cluster's admission defaults decide (privileged "
                   "unless its AdmissionConfiguration says otherwise; see `admission` below); ")
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
    applied = format_version(label_minor(version, min(server or CEILING, CEILING)))
    verdict = evaluate_pod(template.get("metadata"), template.get("spec"), level, applied)
    where = f"{source}enforce={level}, enforce-version={version}"
    if version not in (applied, "latest"):
        where += f" (this server applies {applied})"
    if verdict.allowed:
        return Check(scope, "pod security", None, f"{where}: admits the executor")
    fix = ("label the namespace pod-security.kubernetes.io/enforce-version=v1.35 (or newer) "
           "at baseline on a 1.35+ cluster; `zuul-k8s render` shows the labels the kit sets")
    if server is not None and server < isolation.BASELINE_ADMITS_UNMASKED_FROM:
        fix = (f"this server's Pod Security (1.{server}) denies procMount: Unmasked at baseline "
               f"whatever the label says: set kubernetes.version: \"1.{server}\" so the kit "
               "enforces privileged on the namespace (warn and audit stay at baseline), or "
               "upgrade the cluster to 1.35")
    return Check(scope, "pod security", Severity.ERROR,
                 f"{where}: would deny the executor: {verdict.message()}", fix)


def secret_checks(config_secrets: dict[str, Any],
                  found: dict[str, dict[str, Any] | Denied | None],
                  namespace: str) -> list[Check]:
    """Each named Secret exists and holds the keys the pod mounts (names only, never values)."""
    out = []
    for role, ref in config_secrets.items():
        name = ref["name"]
        keys = SECRET_KEYS.get(role, ()) or ((ref["key"],) if "key" in ref else ())
        secret = found.get(name)
        scope = f"secret {name}"
        if isinstance(secret, Denied):
            out.append(Check(scope, role, Severity.ERROR, f"cannot read it: {secret.message}",
                             secret.fix))
            continue
        if secret is None:
            out.append(Check(scope, role, Severity.ERROR, f"missing in namespace {namespace}",
                             f"kubectl -n {namespace} create secret generic {name} "
                             + " ".join(f"--from-file={k}=..." for k in keys)))
            continue
        present = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
        missing = [k for k in keys if k not in present]
        if missing:
            out.append(Check(scope, role, Severity.ERROR, f"lacks key(s) {', '.join(missing)} "
                             f"(has: {', '.join(sorted(present)) or 'none'})",
                             f"add {', '.join(missing)} to the Secret {name}"))
        else:
            out.append(Check(scope, role, None, f"has {', '.join(keys) or 'data'}"))
    return out


def access_checks(reviews: list[tuple[Rule, bool]], namespace: str) -> list[Check]:
    out = []
    for rule, allowed in reviews:
        where = f" in {namespace}" if rule.namespaced else " (cluster-wide)"
        if allowed:
            out.append(Check("access", rule.text, None, "allowed" + where))
        else:
            out.append(Check("access", rule.text, Severity.ERROR, f"denied{where}; needed by "
                             f"{rule.why}", rule.grant()))
    return out


@dataclass(frozen=True)
class Denied:
    """A read the cluster refused (403): shown as a blocking row, not an abort."""

    message: str
    fix: str


@dataclass(frozen=True)
class Result:
    checks: list[Check]
    eligible: list[str]
    ineligible: dict[str, str]
    nodes_known: bool = True

    @property
    def blocked(self) -> bool:
        return any(c.blocks for c in self.checks) or not self.eligible


def takeover_checks(result: Takeover | None) -> list[Check]:
    """Taking over an existing namespace: each pod its new labels deny and each object the
    kit would fight over is a row, blocking when `apply` refuses them without --force."""
    if result is None:
        return []
    scope = f"namespace {result.namespace}"
    fix = ("give the kit a namespace of its own (namespace.name), or move those out; "
           "`zuul-k8s apply --force` relabels and takes over anyway")
    severity = Severity.ERROR if result.blocks else Severity.WARNING
    rows = [Check(scope, "takeover", severity, f"{f.what}: {f.why}", fix)
            for f in result.findings]
    return rows or [Check(scope, "takeover", None, "nothing the kit would deny or fight over")]


def judge(version: dict[str, Any], nodes: list[dict[str, Any]] | Denied,
          namespace: dict[str, Any] | Denied | None,
          secrets: dict[str, dict[str, Any] | Denied | None],
          reviews: list[tuple[Rule, bool]], config: Any,
          template: dict[str, Any], takeover: Takeover | None = None,
          stored: list[Finding] | None = None, admission: Admission | None = None) -> Result:
    """Every check, from what the API answered; pure. `stored`: what a server-side dry
    run of the workload showed the server would change (None: not tried)."""
    checks = [api_version_check(version), target_check(version, config)]
    eligible, ineligible = [], {}
    if isinstance(nodes, Denied):
        checks.append(Check("cluster", "nodes", Severity.ERROR,
                            f"cannot list the nodes: {nodes.message}", nodes.fix))
        nodes = []
    for node in nodes:
        why = eligibility(node, template["spec"])
        if why:
            ineligible[node["metadata"]["name"]] = why
            continue
        eligible.append(node["metadata"]["name"])
        checks += node_checks(node)
    if isinstance(namespace, Denied):
        checks.append(Check(f"namespace {config.namespace}", "pod security", Severity.ERROR,
                            f"cannot read the namespace: {namespace.message}", namespace.fix))
    else:
        from zuul_k8s.render import namespace_labels

        kit_labels = namespace_labels(config["kubernetes"]["podSecurityLevel"], config.target_minor)
        checks.append(namespace_check(namespace, config.namespace, config["namespace"]["create"],
                                      template, server_minor(version), kit_labels))
        if namespace is not None:
            checks += takeover_checks(takeover)
        checks.append(stored_check(stored, config.namespace))
        if namespace is not None:
            checks.append(admission_check(admission, config.namespace))
    checks += secret_checks(config["secrets"], secrets, config.namespace)
    checks += access_checks(reviews, config.namespace)
    known = not any(c.scope == "cluster" and c.name == "nodes" for c in checks)
    return Result(checks, eligible, ineligible, known)


def gather(cluster: Any, config: Any, template: dict[str, Any],
           objects: list[dict[str, Any]]) -> Result:
    """Ask the API for what `judge` needs. A 403 on a read becomes a blocking row; the
    rules reviewed are access.required(objects): what apply, selftest and upgrade send."""
    from zuul_k8s.cluster.client import ApiError, explain

    ns = config.namespace

    def read(path: str, rule: Rule) -> dict[str, Any] | Denied | None:
        try:
            return cluster.get(path)
        except ApiError as err:
            if err.status != 403:
                raise
            return Denied(f"forbidden ({err.message})" if err.message else "forbidden",
                          rule.grant())

    try:
        version = cluster.request("GET", "/version")
        listing = read("/api/v1/nodes", Rule("list", "Node"))
        nodes: list[dict[str, Any]] | Denied = (
            listing if isinstance(listing, Denied) else (listing or {}).get("items", []))
        namespace = read(f"/api/v1/namespaces/{ns}", Rule("get", "Namespace"))
        secrets: dict[str, dict[str, Any] | Denied | None] = {}
        for ref in config["secrets"].values():
            if namespace is not None:
                secrets[ref["name"]] = read(f"/api/v1/namespaces/{ns}/secrets/{ref['name']}",
                                            Rule("get", "Secret"))
            else:
                secrets[ref["name"]] = None
        found = None
        if namespace is not None and not isinstance(namespace, Denied):
            try:
                found = takeover.gather(cluster, config, objects)
            except ApiError as err:  # a refused list is already a row of the access table
                if err.status != 403:
                    raise
        stored, admission = None, None
        if isinstance(namespace, dict):
            stored = dry_run_workload(cluster, objects)
            if not config["namespace"]["create"]:  # else apply relabels it: the labels decide
                admission = dry_run_pod(cluster, ns, template)
        reviews = []
        for rule in access.required(objects):
            answer = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                     body={"apiVersion": "authorization.k8s.io/v1",
                                           "kind": "SelfSubjectAccessReview",
                                           "spec": {"resourceAttributes": rule.attributes(ns)}})
            reviews.append((rule, bool(answer.get("status", {}).get("allowed"))))
    except ApiError as err:
        raise explain(err, cluster.server, "preflight") from None
    return judge(version, nodes, namespace, secrets, reviews, config, template, found, stored,
                 admission)


@dataclass(frozen=True)
class Admission:
    """The server's own admission verdict on an executor pod (a dry-run create)."""

    checked: bool
    denial: str = ""


def dry_run_pod(cluster: Any, namespace: str, template: dict[str, Any]) -> Admission:
    """Create the executor's pod as a server-side dry run: the server's Pod Security
    admission answers with everything the labels do not show (its admission config's
    defaults for unlabelled namespaces, exemptions, its own version's rules)."""
    from zuul_k8s.cluster.client import ApiError

    spec = {k: v for k, v in template["spec"].items() if k != "serviceAccountName"}  # not applied yet
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "zuul-k8s-preflight-",
                        "labels": (template.get("metadata") or {}).get("labels") or {}},
           "spec": spec}
    try:
        cluster.request("POST", f"/api/v1/namespaces/{namespace}/pods", {"dryRun": "All"}, pod)
    except ApiError as err:
        if err.status == 403 and "violates PodSecurity" in err.message:
            return Admission(True, err.message)
        return Admission(False)  # not allowed to create pods, or refused for another reason
    return Admission(True)


def admission_check(admission: Admission | None, namespace: str) -> Check:
    scope = f"namespace {namespace}"
    if admission is None or not admission.checked:
        return Check(scope, "admission", None, "not checked (a dry-run pod needs the namespace and "
                     "`create pods`; the labels above are judged instead)")
    if not admission.denial:
        return Check(scope, "admission", None, "a dry-run executor pod is admitted by the server")
    return Check(scope, "admission", Severity.ERROR, f"the server denies a dry-run executor pod: "
                 f"{admission.denial}", "label the namespace so that it admits the executor "
                 "(`zuul-k8s render` shows the labels); an unlabelled namespace gets the cluster's "
                 "admission defaults")


def dry_run_workload(cluster: Any, objects: list[dict[str, Any]]) -> list[Finding] | None:
    """What the server would change in the workload's isolation settings (a server-side
    dry run stores nothing); None when it cannot say (refused, or a conflict)."""
    from zuul_k8s.cluster.apply import STORED_CHECK_MINOR, dry_run
    from zuul_k8s.cluster.client import ApiError
    from zuul_k8s.cluster.stored import changed_by_server

    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    try:
        return changed_by_server(workload, dry_run(cluster, workload), STORED_CHECK_MINOR)
    except ApiError:
        return None


def target_check(version: dict[str, Any], config: Any) -> Check:
    """The config's kubernetes.version against the server's: labels and gates the kit
    renders for a newer minor mean something else to an older server."""
    minor, target = server_minor(version), config.target_minor
    if minor is None or minor >= target:
        return Check("cluster", "target version", None, f"kubernetes.version 1.{target}")
    return Check("cluster", "target version", Severity.ERROR,
                 f"kubernetes.version is 1.{target} but the server is 1.{minor}: it reads the "
                 f"kit's Pod Security labels (v1.{target}) as its own latest, v1.{minor}",
                 f"set kubernetes.version: \"1.{minor}\" in the config")


def stored_check(stored: list[Finding] | None, namespace: str) -> Check:
    scope = f"namespace {namespace}"
    if stored is None:
        return Check(scope, "stored as sent", None, "not checked (the namespace does not exist "
                     "yet, or the dry run was refused): `zuul-k8s apply` checks it first")
    if not stored:
        return Check(scope, "stored as sent", None, "a server-side dry run of the workload keeps "
                     "every isolation setting")
    return Check(scope, "stored as sent", Severity.ERROR,
                 "; ".join(f"{f.path}: {f.message}" for f in stored), stored[0].fix)


def table(result: Result) -> str:
    """Per-scope tables (cluster, each node, namespace, secrets, access) and the verdict."""
    lines: list[str] = []
    scope = None
    width = max((len(c.name) for c in result.checks), default=8)
    for check in result.checks:
        if check.scope != scope:
            scope = check.scope
            lines.append(f"\n{scope}")
        lines.append(f"  {check.name:<{width}}  {check.status:<7}  {check.detail}")
        if check.fix and check.severity is not None:
            lines.append(f"  {'':<{width}}  {'':<7}  fix: {check.fix}")
    for name, why in result.ineligible.items():
        lines.append(f"\nnode {name}: not eligible for the executor ({why})")
    errors = [c for c in result.checks if c.blocks]
    warnings = [c for c in result.checks if c.severity is Severity.WARNING]
    if not result.nodes_known:
        lines.append("\nthe nodes could not be listed: the executor's nodes are unchecked")
    elif not result.eligible:
        lines.append("\nno node can run the executor: check scheduling.nodeSelector/tolerations "
                     "(and cordoned nodes)")
    verdict = "BLOCKED" if result.blocked else "READY"
    lines.append(f"\nverdict: {verdict}: {len(errors)} blocking, {len(warnings)} warning(s), "
                 f"{len(result.eligible)} eligible node(s)")
    return "\n".join(lines).lstrip("\n") + "\n"

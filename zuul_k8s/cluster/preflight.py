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
from zuul_k8s.cluster import access
from zuul_k8s.cluster.access import Rule
from zuul_k8s.findings import Severity

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
    minor = numbers(str(version.get("minor", "")).rstrip("+"), 1)
    git = str(version.get("gitVersion", "?"))
    if minor is None:
        return Check("cluster", "API server", Severity.WARNING, f"{git}: cannot read the version")
    gate = isolation.version_gate(minor[0])
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


NODE_CHECKS = (kernel_check, runtime_check, kubelet_check)


def node_checks(node: dict[str, Any]) -> list[Check]:
    scope = f"node {node['metadata']['name']}"
    info = node.get("status", {}).get("nodeInfo", {})
    return [check(scope, info) for check in NODE_CHECKS] + [os_check(scope, node)]


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


def namespace_check(namespace: dict[str, Any] | None, name: str, creates: bool,
                    template: dict[str, Any]) -> Check:
    """Would the namespace's Pod Security admission let the executor's pods in?"""
    from zuul_k8s.podsecurity import evaluate_pod

    scope = f"namespace {name}"
    if namespace is None:
        if creates:
            return Check(scope, "pod security", None, "does not exist yet; `zuul-k8s apply` "
                         "creates it with labels that admit the executor")
        return Check(scope, "pod security", Severity.ERROR, "does not exist",
                     "create it, or set namespace.create: true")
    labels = namespace["metadata"].get("labels") or {}
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
    verdict = evaluate_pod(template.get("metadata"), template.get("spec"), level, version)
    where = f"enforce={level}, enforce-version={version}"
    if verdict.allowed:
        return Check(scope, "pod security", None, f"{where}: admits the executor")
    return Check(scope, "pod security", Severity.ERROR,
                 f"{where}: would deny the executor: {verdict.message()}",
                 "label the namespace pod-security.kubernetes.io/enforce-version=v1.35 (or newer) "
                 "at baseline; `zuul-k8s render` shows the labels the kit sets")


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


def judge(version: dict[str, Any], nodes: list[dict[str, Any]] | Denied,
          namespace: dict[str, Any] | Denied | None,
          secrets: dict[str, dict[str, Any] | Denied | None],
          reviews: list[tuple[Rule, bool]], config: Any,
          template: dict[str, Any]) -> Result:
    """Every check, from what the API answered; pure."""
    checks = [api_version_check(version)]
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
        checks.append(namespace_check(namespace, config.namespace, config["namespace"]["create"],
                                      template))
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
        reviews = []
        for rule in access.required(objects):
            answer = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                     body={"apiVersion": "authorization.k8s.io/v1",
                                           "kind": "SelfSubjectAccessReview",
                                           "spec": {"resourceAttributes": rule.attributes(ns)}})
            reviews.append((rule, bool(answer.get("status", {}).get("allowed"))))
    except ApiError as err:
        raise explain(err, cluster.server, "preflight") from None
    return judge(version, nodes, namespace, secrets, reviews, config, template)


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

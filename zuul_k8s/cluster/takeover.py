"""Taking over a namespace that already holds things: what the kit would break or fight over.

Two kinds of findings, judged from what the API answered (pure), fetched by `gather`:

- Pods the Pod Security level the kit would set on the namespace denies (the kit's own
  evaluator). Relabelling evicts nothing, but the next time a controller recreates such a
  pod (a node drain, a rollout, a crash) admission refuses it: another deployer's
  privileged executors would quietly stop coming back.
- Objects the kit would fight over: an object with a name the kit renders that zuul-k8s
  does not manage (server-side apply would conflict, or with --force-conflicts take it
  over), another deployer's executor objects by their names (PEERS), and Secrets the
  config names that another deployer writes (it would rewrite what the kit's executors
  read).

`apply` refuses (unless --force) when it would take over an object it does not manage, or
relabel a namespace holding such pods or another deployer's executor; `preflight` shows
every finding, blocking or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.cluster.client import FIELD_MANAGER

# Executor objects other deployers create, by name (full-match patterns), with the source
# each was read in. The Zuul operator and sf-operator both call their StatefulSet
# zuul-executor; a name alone cannot tell them apart, so findings name every match.
OPERATOR = "zuul-ci/zuul-operator zuul_operator/templates/zuul.yaml"
SF_OPERATOR = "softwarefactory-project/sf-operator controllers/zuul.go (EnsureZuulExecutor, " \
    "EnsureZuulExecutorService)"
HELM = "zuul/zuul-helm charts/zuul/templates/executor/{statefulset,service}.yaml " \
    "({{ zuul.fullname }}-executor, fullname = RELEASE-zuul or a release name holding 'zuul')"


@dataclass(frozen=True)
class Peer:
    deployer: str
    kind: str
    pattern: str
    source: str

    def matches(self, kind: str, name: str) -> bool:
        return kind == self.kind and re.fullmatch(self.pattern, name) is not None


PEERS: tuple[Peer, ...] = (
    Peer("the Zuul operator", "StatefulSet", r"zuul-executor", OPERATOR),
    Peer("the Zuul operator", "Service", r"zuul-executor", OPERATOR),
    Peer("sf-operator", "StatefulSet", r"zuul-executor", SF_OPERATOR),
    Peer("sf-operator", "Service", r"zuul-executor-headless", SF_OPERATOR),
    Peer("a Zuul Helm chart", "StatefulSet", r"[a-z0-9-]*zuul[a-z0-9-]*-executor", HELM),
    Peer("a Zuul Helm chart", "Service", r"[a-z0-9-]*zuul[a-z0-9-]*-executor", HELM),
)

PSA_PREFIX = "pod-security.kubernetes.io/"

# The kinds `gather` lists in the namespace to find PEERS (access.FIXED has their rules).
LISTED_KINDS = ("StatefulSet", "Deployment", "Service")

# Metadata that says another tool manages an object (Helm's own labels and annotations).
HELM_MARKS = ("meta.helm.sh/release-name",)


@dataclass(frozen=True)
class Finding:
    what: str  # `Pod zuul/zuul-executor-0`, `Service zuul/zuul-executor`
    why: str

    def line(self) -> str:
        return f"{self.what}: {self.why}"


@dataclass(frozen=True)
class Takeover:
    namespace: str
    relabels: bool  # the kit would change the namespace's Pod Security labels
    denied_pods: list[Finding]  # only when it relabels: else nothing changes for them
    collisions: list[Finding]  # objects with the kit's own names that it does not manage
    lookalikes: list[Finding]  # other deployers' executor objects and Secrets
    level: str | None  # the enforce level the kit would set; None: it sets none

    @property
    def contested(self) -> list[Finding]:
        return self.collisions + self.lookalikes

    @property
    def findings(self) -> list[Finding]:
        return self.denied_pods + self.contested

    @property
    def blocks(self) -> bool:
        """`apply` refuses without --force: it would take over objects it does not manage,
        or relabel a namespace that holds pods the new labels deny or another deployer's
        executor. Once the namespace carries the kit's labels, a peer's leftovers are
        reported, not refused (migrating side by side)."""
        return bool(self.collisions) or (self.relabels and bool(self.denied_pods
                                                                or self.lookalikes))

    def summary(self) -> str:
        parts = []
        if self.denied_pods:
            parts.append(f"{len(self.denied_pods)} pod(s) the Pod Security level it would set "
                         f"({self.level}) denies")
        if self.contested:
            parts.append(f"{len(self.contested)} object(s) the kit would fight over")
        return " and ".join(parts)


def managed_by_kit(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    managers = [m.get("manager") for m in meta.get("managedFields") or []]
    if managers:
        return FIELD_MANAGER in managers
    return (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == FIELD_MANAGER


def owner_text(obj: dict[str, Any]) -> str:
    """Who made an object, from its metadata: owner references, Helm's marks, the
    managed-by label, else its field managers."""
    meta = obj.get("metadata") or {}
    owners = [f"{o.get('kind')}/{o.get('name')} ({o.get('apiVersion')})"
              for o in meta.get("ownerReferences") or []]
    if owners:
        return "owned by " + ", ".join(owners)
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    release = next((annotations[k] for k in HELM_MARKS if k in annotations), None)
    if release or labels.get("app.kubernetes.io/managed-by") == "Helm":
        return f"Helm release {release}" if release else "Helm"
    if labels.get("app.kubernetes.io/managed-by"):
        return f"managed by {labels['app.kubernetes.io/managed-by']}"
    managers = sorted({str(m.get("manager")) for m in meta.get("managedFields") or []})
    return "field managers: " + ", ".join(managers) if managers else "made by hand"


def another_deployer(obj: dict[str, Any]) -> bool:
    """Evidence that a tool (an operator, Helm) and not a person manages this object."""
    meta = obj.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    return bool(meta.get("ownerReferences")) or any(k in annotations for k in HELM_MARKS) or (
        labels.get("app.kubernetes.io/managed-by") not in (None, FIELD_MANAGER))


def _ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


def denied_pods(pods: Iterable[dict[str, Any]], level: str, version: str) -> list[Finding]:
    from zuul_k8s.podsecurity import evaluate_pod

    out = []
    for pod in pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue  # finished pods are never admitted again
        verdict = evaluate_pod(pod.get("metadata"), pod.get("spec"), level, version)
        if not verdict.allowed:
            out.append(Finding(f"Pod {pod['metadata'].get('namespace')}/{pod['metadata']['name']}",
                               f"{level}:{version} would deny it ({verdict.message()}); "
                               f"{owner_text(pod)}"))
    return out


def collisions(rendered: list[dict[str, Any]],
               live: dict[tuple[str, str], dict[str, Any]]) -> list[Finding]:
    """Objects with the kit's names that it does not manage (`live`: kind, name -> object)."""
    out = []
    for obj in rendered:
        if obj["kind"] == "Namespace":
            continue
        found = live.get((obj["kind"], obj["metadata"]["name"]))
        if found is not None and not managed_by_kit(found):
            out.append(Finding(_ref(found), f"exists and zuul-k8s does not manage it "
                               f"({owner_text(found)}); apply would take it over"))
    return out


def lookalikes(listed: Iterable[dict[str, Any]], secrets: Iterable[dict[str, Any]],
               taken: set[str]) -> list[Finding]:
    """Other deployers' executor objects by name (`listed`, except those in `taken`), and
    config Secrets another deployer writes."""
    out = []
    for obj in listed:
        name = obj["metadata"]["name"]
        deployers = list(dict.fromkeys(p.deployer for p in PEERS if p.matches(obj["kind"], name)))
        if deployers and not managed_by_kit(obj) and _ref(obj) not in taken:
            out.append(Finding(_ref(obj), f"named like the executor {obj['kind']} of "
                               f"{' or '.join(deployers)} ({owner_text(obj)})"))
    for secret in secrets:
        if another_deployer(secret):
            out.append(Finding(_ref(secret), f"the config names it, and another deployer "
                               f"writes it ({owner_text(secret)}): it may rewrite what the "
                               "kit's executors read; give the kit a Secret of its own "
                               "(secrets.*.name)"))
    return out


def judge(namespace: dict[str, Any] | None, rendered: list[dict[str, Any]],
          pods: list[dict[str, Any]], live: dict[tuple[str, str], dict[str, Any]],
          listed: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> Takeover:
    """Everything `apply` would break or fight over in an existing namespace; pure."""
    planned = next((o for o in rendered if o["kind"] == "Namespace"), None)
    name = (planned or next(o for o in rendered if o["kind"] != "Namespace"))["metadata"].get(
        "namespace", (planned or {}).get("metadata", {}).get("name", ""))
    if namespace is None:
        return Takeover(name, False, [], [], [], None)
    level = None
    relabels = False
    pods_denied: list[Finding] = []
    if planned is not None:
        wanted = {k: v for k, v in (planned["metadata"].get("labels") or {}).items()
                  if k.startswith(PSA_PREFIX)}
        current = namespace["metadata"].get("labels") or {}
        relabels = any(current.get(k) != v for k, v in wanted.items())
        level = wanted.get(f"{PSA_PREFIX}enforce", "privileged")
        if relabels:
            pods_denied = denied_pods(pods, level, wanted.get(f"{PSA_PREFIX}enforce-version",
                                                              "latest"))
    taken = collisions(rendered, live)
    return Takeover(namespace["metadata"]["name"], relabels, pods_denied, taken,
                    lookalikes(listed, secrets, {f.what for f in taken}), level)


def gather(cluster: Any, config: Any, rendered: list[dict[str, Any]]) -> Takeover:
    """Read what `judge` needs: the namespace, its pods, the objects with the kit's names,
    the kinds peers use, and the Secrets the config names. Every request is in the access
    table (access.FIXED and access.APPLY_VERBS)."""
    from zuul_k8s.cluster.resources import RESOURCES, object_path

    ns = config.namespace
    namespace = cluster.get(f"/api/v1/namespaces/{ns}")
    if namespace is None:
        return judge(None, rendered, [], {}, [], [])
    pods = cluster.request("GET", RESOURCES["Pod"].path(ns)).get("items", [])
    live = {}
    for obj in rendered:
        if obj["kind"] != "Namespace":
            found = cluster.get(object_path(obj))
            if found is not None:
                live[(obj["kind"], obj["metadata"]["name"])] = {**found, "kind": obj["kind"]}
    listed = []
    for kind in LISTED_KINDS:
        for item in cluster.request("GET", RESOURCES[kind].path(ns)).get("items", []):
            listed.append({**item, "kind": kind})
    secrets = []
    for ref in config["secrets"].values():
        if ref is None:
            continue
        found = cluster.get(RESOURCES["Secret"].path(ns, ref["name"]))
        if found is not None:
            # Only the metadata is kept: the values are never looked at.
            secrets.append({"kind": "Secret", "metadata": found.get("metadata") or {}})
    return judge(namespace, rendered, pods, live, listed, secrets)


def report(result: Takeover) -> list[str]:
    """Lines for the findings, grouped (the pods only when the kit relabels)."""
    lines = []
    if result.denied_pods:
        lines.append(f"namespace {result.namespace}: pods the Pod Security level the kit would "
                     f"set (enforce={result.level}) denies; they run on, but are not admitted "
                     "again when recreated:")
        lines += [f"  {f.line()}" for f in result.denied_pods]
    if result.contested:
        lines.append(f"namespace {result.namespace}: objects the kit would fight over:")
        lines += [f"  {f.line()}" for f in result.contested]
    return lines

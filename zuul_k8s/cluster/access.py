"""Every API request the kit makes, as one table of RBAC rules (rules as data).

`preflight` asks a SelfSubjectAccessReview for each rule `required()` returns
for the config's objects, so it can only say READY when `apply`, `selftest`
and `upgrade` will be allowed. The cluster tests record every request that
reaches the API double during apply, self-test, upgrade and preflight and
check each one is `covered()` here, so the table cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.cluster.resources import RESOURCES


@dataclass(frozen=True)
class Rule:
    verb: str  # get list watch create patch delete
    kind: str  # a key of resources.RESOURCES
    subresource: str = ""
    why: str = ""

    @property
    def group(self) -> str:
        return RESOURCES[self.kind].group

    @property
    def namespaced(self) -> bool:
        return RESOURCES[self.kind].namespaced

    @property
    def resource(self) -> str:
        plural = RESOURCES[self.kind].plural
        return f"{plural}/{self.subresource}" if self.subresource else plural

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.verb, self.group, self.resource)

    @property
    def text(self) -> str:
        """`patch deployments.apps`, `get pods/log`: how the preflight table names it."""
        return f"{self.verb} {self.resource}{'.' + self.group if self.group else ''}"

    def attributes(self, namespace: str) -> dict[str, str]:
        """SelfSubjectAccessReview spec.resourceAttributes."""
        attrs = {"verb": self.verb, "group": self.group, "resource": RESOURCES[self.kind].plural}
        if self.subresource:
            attrs["subresource"] = self.subresource
        if self.namespaced:
            attrs["namespace"] = namespace
        return attrs

    def grant(self) -> str:
        return (f"grant {{apiGroups: [\"{self.group}\"], resources: [\"{self.resource}\"], "
                f"verbs: [\"{self.verb}\"]}} in a {'Role' if self.namespaced else 'ClusterRole'}")


# apply.apply_one, per object it applies: a GET (created, configured or unchanged?),
# then the server-side apply PATCH. `upgrade` GETs the workload the same way.
# A server-side apply PATCH that creates the object is authorized as `create` as well
# (kube-apiserver, staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go: the
# patcher's createValidation checks createAuthorizerAttributes), so a first apply needs both.
APPLY_VERBS = ("get", "patch", "create")
# selftest_job.run: its ConfigMap and Jobs, server-side applied (PATCH, no GET), then deleted.
SELFTEST_KINDS = ("ConfigMap", "Job")
SELFTEST_VERBS = ("patch", "create", "delete")  # always new objects: create, as above

# Requests that do not depend on which objects the config renders.
FIXED: tuple[Rule, ...] = (
    Rule("get", "Namespace", why="preflight: the namespace's Pod Security labels"),
    Rule("list", "Node", why="preflight and selftest --all-nodes: the nodes the executor may use"),
    Rule("get", "Secret", why="preflight: the Secrets exist and hold their keys"),
    Rule("list", "Pod", why="rollout and self-test: the executor's and the probe's pods"),
    Rule("watch", "Pod", why="rollout: each executor's drain and start"),
    Rule("get", "Pod", "log", why="self-test: the probe's report"),
    Rule("list", "Event", why="why a pod, ReplicaSet or workload does not start"),
    Rule("list", "ReplicaSet", why="rollout: the Deployment's ReplicaSets and their events"),
    # takeover.gather: another deployer's executor objects in the namespace, by name.
    Rule("list", "StatefulSet", why="apply and preflight: another deployer's executor objects"),
    Rule("list", "Deployment", why="apply and preflight: another deployer's executor objects"),
    Rule("list", "Service", why="apply and preflight: another deployer's executor objects"),
)

# Allowed to every authenticated user (the system:basic-user ClusterRole): not reviewed.
ALWAYS_ALLOWED: tuple[Rule, ...] = (
    Rule("create", "SelfSubjectAccessReview", why="preflight: the access reviews themselves"),
)


# Every kind `render` may produce (the Namespace only with namespace.create, one of the
# two workload kinds): what the requirements table in docs/requirements.md lists.
RENDERED_KINDS = ("Namespace", "ServiceAccount", "Service", "NetworkPolicy", "Deployment", "StatefulSet",
                  "PodDisruptionBudget")


def for_kinds(kinds: Iterable[str]) -> list[Rule]:
    """The rules the kit needs to apply objects of these kinds, self-test and upgrade."""
    kinds = list(dict.fromkeys(kinds))
    rules = [Rule(verb, kind, why=f"apply: {kind}") for kind in kinds for verb in APPLY_VERBS]
    rules += [Rule(verb, kind, why=f"selftest: the probe's {kind}")
              for kind in SELFTEST_KINDS for verb in SELFTEST_VERBS]
    rules += FIXED
    seen: set[tuple[str, str, str]] = set()
    out = []
    for rule in rules:
        if rule.key not in seen:
            seen.add(rule.key)
            out.append(rule)
    return out


def required(objects: Iterable[dict[str, Any]]) -> list[Rule]:
    """The rules the kit needs for these rendered objects, in a stable order."""
    return for_kinds(str(o["kind"]) for o in objects)


def covered(verb: str, group: str, resource: str, objects: Iterable[dict[str, Any]]) -> bool:
    """Is this request (as an RBAC verb, group and resource[/subresource]) in the table?"""
    keys = {r.key for r in (*required(objects), *ALWAYS_ALLOWED)}
    return (verb, group, resource) in keys

"""Following a rollout: progress lines from the workload's status, and each
pod's life from a watch on the executor's pods (draining, gone, ready).

The judgement (`progress`, `pod_lines`) is pure; `follow` is the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from zuul_k8s.cluster import podstatus
from zuul_k8s.cluster.client import ApiError, Cluster, explain
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.errors import Problem, UserError


@dataclass(frozen=True)
class Progress:
    desired: int
    updated: int
    ready: int
    total: int
    observed: bool  # the controller has seen the latest spec

    @property
    def done(self) -> bool:
        return (self.observed and self.updated == self.desired and self.ready == self.desired
                and self.total == self.desired)

    def line(self) -> str:
        return (f"rollout: {self.updated}/{self.desired} updated, {self.ready}/{self.desired} ready"
                f"{f', {self.total} pods' if self.total != self.desired else ''}")


def progress(workload: dict[str, Any]) -> Progress:
    spec, status = workload.get("spec", {}), workload.get("status") or {}
    desired = int(spec.get("replicas", 1))
    observed = status.get("observedGeneration", 0) >= workload["metadata"].get("generation", 1)
    updated = int(status.get("updatedReplicas", 0))
    if workload["kind"] == "StatefulSet" and status.get("currentRevision") != status.get("updateRevision"):
        updated = min(updated, desired - 1) if desired else 0
    return Progress(desired, updated, int(status.get("readyReplicas", 0)),
                    int(status.get("replicas", 0)), observed)


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def pod_state(pod: dict[str, Any]) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "draining"
    return "ready" if ready(pod) else "starting"


def pod_lines(seen: dict[str, str], event: dict[str, Any], clock: float,
              started: dict[str, float]) -> list[str]:
    """What one watch event says about a pod's life; updates `seen` and `started`."""
    pod = event["object"]
    name = pod["metadata"]["name"]
    if event["type"] == "DELETED":
        if seen.pop(name, None) is None:
            return []
        began = started.pop(name, None)
        took = f" after {clock - began:.0f}s" if began is not None else ""
        return [f"pod {name}: stopped{took}"]
    state, before = pod_state(pod), seen.get(name)
    seen[name] = state
    if state == before:
        return []
    if state == "draining":
        started[name] = clock
        grace = pod["metadata"].get("deletionGracePeriodSeconds",
                                    pod["spec"].get("terminationGracePeriodSeconds", 30))
        return [f"pod {name}: draining (graceful stop, running builds finish; up to {grace}s)"]
    if state == "ready":
        return [f"pod {name}: ready"]
    return [f"pod {name}: starting"] if before is None else []


def selector(workload: dict[str, Any]) -> str:
    labels = workload["spec"]["selector"]["matchLabels"]
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def condition(workload: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (workload.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), None)


def owned_replicasets(cluster: Cluster, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's ReplicaSets (by ownerReference), newest first."""
    namespace, uid = workload["metadata"]["namespace"], workload["metadata"].get("uid")
    sets = cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets",
                           {"labelSelector": selector(workload)}).get("items", [])
    mine = [r for r in sets if any(o.get("uid") == uid and o.get("kind") == workload["kind"]
                                   for o in r["metadata"].get("ownerReferences") or [])]
    return sorted(mine, key=lambda r: r["metadata"].get("creationTimestamp") or "", reverse=True)


def stuck(cluster: Cluster, workload: dict[str, Any]) -> list[str]:
    """Explanations for the workload's pods that are not running, else for the pods that
    were never created.

    A Deployment's pods are created by its ReplicaSets: a pod admission denies leaves a
    FailedCreate event on the ReplicaSet and a ReplicaFailure condition on the Deployment
    (the deployment controller copies it up); a StatefulSet records FailedCreate on itself.
    """
    namespace = workload["metadata"]["namespace"]
    pods = cluster.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                           {"labelSelector": selector(workload)}).get("items", [])
    out = []
    for pod in pods:
        if ready(pod) or pod["metadata"].get("deletionTimestamp"):
            continue
        why = podstatus.explain(pod, podstatus.events_for(cluster, namespace, pod["metadata"]["name"]))
        if why:
            out.append(f"pod {pod['metadata']['name']}: {why}")
    if out:
        return out
    events = podstatus.events_for(cluster, namespace, workload["metadata"]["name"])
    if workload["kind"] == "Deployment":
        failure = condition(workload, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            events.append({"type": "Warning", "reason": failure.get("reason", "FailedCreate"),
                           "message": failure.get("message", "")})
        for replicaset in owned_replicasets(cluster, workload):
            name = replicaset["metadata"]["name"]
            why = podstatus.explain(None, podstatus.events_for(cluster, namespace, name))
            if why:
                return [f"ReplicaSet {namespace}/{name}: {why}"]
    why = podstatus.explain(None, events)
    return [f"{ref(workload)}: {why}"] if why else []


def follow(cluster: Cluster, workload: dict[str, Any], out: Callable[[str], None],
           timeout: float = 900, watch_seconds: int = 2) -> Progress:
    """Print progress until the rollout is complete; UserError when it stalls past `timeout`.

    The pods are listed once, then watched from that resourceVersion, so no
    pod's draining or stop falls between two requests; a 410 (history too
    old) lists again.
    """
    path = object_path(workload)
    namespace = workload["metadata"]["namespace"]
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    seen: dict[str, str] = {}
    started: dict[str, float] = {}
    last_line = ""
    version: str | None = None
    deadline = time.monotonic() + timeout

    def check() -> Progress:
        """The workload's progress; done only once the drained pods are gone too, so the
        report shows every old executor's graceful stop."""
        nonlocal last_line
        current = cluster.get(path)
        if current is None:
            raise UserError(Problem(ref(workload), "", "disappeared during the rollout"))
        state = progress(current)
        draining = sum(s == "draining" for s in seen.values())
        line = state.line() + (f", {draining} draining" if draining else "")
        if line != last_line:
            out(line)
            last_line = line
        if draining:
            state = replace(state, total=state.total + draining)
        progressing = condition(current, "Progressing") or {}
        gave_up = (state.observed and progressing.get("status") == "False"
                   and progressing.get("reason") == "ProgressDeadlineExceeded")
        if not state.done and (gave_up or time.monotonic() > deadline):
            reasons = stuck(cluster, current) or [
                "no pod reports a reason; see `kubectl describe` of the workload and its pods"]
            head = (f"the rollout stopped: ProgressDeadlineExceeded after "
                    f"{current['spec'].get('progressDeadlineSeconds', 600)}s without progress "
                    f"({state.line()})" if gave_up else
                    f"the rollout did not finish within {timeout:.0f}s ({state.line()})")
            raise UserError([Problem(ref(workload), "", head)]
                            + [Problem(ref(workload), "", r) for r in reasons])
        return state

    try:
        while True:
            if version is None:
                listing = cluster.request("GET", pods_path, {"labelSelector": selector(workload)})
                version = listing["metadata"].get("resourceVersion")
                for pod in listing.get("items", []):
                    for line in pod_lines(seen, {"type": "ADDED", "object": pod},
                                          time.monotonic(), started):
                        out(line)
            state = check()
            if state.done:
                return state
            try:
                for event in cluster.watch(pods_path, timeout_seconds=watch_seconds,
                                           labelSelector=selector(workload),
                                           resourceVersion=version):
                    if event.get("type") == "ERROR":  # 410 Gone as an event: list again
                        version = None
                        break
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    for line in pod_lines(seen, event, time.monotonic(), started):
                        out(line)
                    if check().done:
                        return progress(cluster.get(path) or workload)
            except ApiError as err:
                if err.status != 410:  # 410 Gone as the answer: the history is compacted
                    raise
                version = None
    except ApiError as err:
        raise explain(err, cluster.server, ref(workload)) from None

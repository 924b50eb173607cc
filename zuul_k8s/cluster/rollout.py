"""Following a rollout: progress lines from the workload's status, and each
pod's life from a watch on the executor's pods (draining, gone, ready).

An old executor that drains (a terminating pod still finishing its builds) is
not a stuck rollout: it may take gracefulStopSeconds, three hours by default.
So the default wait is derived from the grace period (`default_timeout`),
draining pods are shown with the time their stop began, and a wait that ends
while only drains remain is reported as such, not as a failure.

The judgement (`progress`, `pod_lines`, `drains`, `settled`) is pure; `follow`
is the loop.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from zuul_k8s.cluster import podstatus
from zuul_k8s.cluster.client import ApiError, Cluster, explain
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.errors import Problem, UserError

# The default wait (docs/upgrading.md, "How long the kit waits"): per executor replaced,
# its graceful stop plus the time a new one takes to start (schedule, pull, connect to
# ZooKeeper, pass its readiness probe); times the rolls the command may do; plus a margin.
START_SECONDS = 300
MARGIN_SECONDS = 300
DRAIN_REPORT_SECONDS = 60.0  # how often the draining pods are listed while nothing else moves
DEFAULT_GRACE = 30  # Kubernetes' terminationGracePeriodSeconds when the pod sets none


def grace_of(workload: dict[str, Any] | None) -> int:
    spec = ((workload or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_GRACE


def replicas_of(workload: dict[str, Any] | None) -> int:
    value = ((workload or {}).get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def default_timeout(planned: dict[str, Any], live: dict[str, Any] | None, rolls: int = 1) -> int:
    """rolls x replicas x (gracefulStopSeconds + START_SECONDS) + MARGIN_SECONDS.

    Replicas and grace period are the larger of the live workload's (the pods being
    replaced drain with the grace period they were created with) and the planned one's
    (a rollback drains the new pods)."""
    replicas = max(replicas_of(planned), replicas_of(live))
    grace = max(grace_of(planned), grace_of(live))
    return rolls * replicas * (grace + START_SECONDS) + MARGIN_SECONDS


@dataclass(frozen=True)
class Deadline:
    """A point in wall time (monotonic clock) the command must not wait past."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() > self.at

    def share(self, parts: int) -> Deadline:
        """The first of `parts` equal shares of what remains (the rest kept for later rolls)."""
        part = self.remaining() / max(parts, 1)
        return Deadline(part, time.monotonic() + part)


@dataclass(frozen=True)
class Drain:
    """An old executor stopping gracefully: since when, and for how long at most."""

    pod: str
    since: datetime.datetime | None  # when its stop was requested (from the server)
    grace: int

    def text(self, now: datetime.datetime) -> str:
        if self.since is None:
            return f"{self.pod} (up to {self.grace}s)"
        ran = int((now - self.since).total_seconds())
        until = self.since + datetime.timedelta(seconds=self.grace)
        return (f"{self.pod} since {self.since:%H:%M:%S}Z ({_duration(ran)} of up to "
                f"{_duration(self.grace)}; killed at the latest at {until:%H:%M:%S}Z)")


def _duration(seconds: int) -> str:
    seconds = max(seconds, 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _timestamp(text: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC)
    except ValueError:
        return None


def drain_of(pod: dict[str, Any]) -> Drain:
    """A terminating pod as a Drain. The server sets deletionTimestamp to the time of the
    delete plus the grace period, so the stop began grace seconds before it."""
    meta = pod["metadata"]
    grace = meta.get("deletionGracePeriodSeconds",
                     pod.get("spec", {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE))
    grace = grace if isinstance(grace, int) else DEFAULT_GRACE
    end = _timestamp(meta.get("deletionTimestamp"))
    since = end - datetime.timedelta(seconds=grace) if end is not None else None
    return Drain(str(meta["name"]), since, grace)


def drains(pods: dict[str, dict[str, Any]]) -> list[Drain]:
    """The draining pods among the last seen state of each pod, by name."""
    return [drain_of(p) for name, p in sorted(pods.items())
            if p["metadata"].get("deletionTimestamp")]


def drain_line(found: list[Drain], now: datetime.datetime) -> str:
    return (f"draining: {len(found)} old executor(s) finishing their builds: "
            + "; ".join(d.text(now) for d in found))


@dataclass(frozen=True)
class Progress:
    desired: int
    updated: int
    ready: int
    total: int
    observed: bool  # the controller has seen the latest spec
    # Old executors still finishing their builds when the wait ended (empty when done).
    draining: tuple[Drain, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Every executor runs the new template and is ready (old ones may still drain)."""
        return self.observed and self.updated == self.desired and self.ready == self.desired

    @property
    def done(self) -> bool:
        return (self.observed and self.updated == self.desired and self.ready == self.desired
                and self.total == self.desired)

    def line(self) -> str:
        if not self.observed:  # the status still describes the previous spec (seen on a real server)
            return "rollout: waiting for the controller to take up the new spec"
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


def settled(state: Progress, pods: dict[str, dict[str, Any]]) -> bool:
    """Nothing is wrong, old executors are only draining: the controller has seen the
    spec, every pod that is not stopping is ready, and the ready ones plus the draining
    ones make up the replicas (a StatefulSet replaces a pod only once it is gone)."""
    stopping = [p for p in pods.values() if p["metadata"].get("deletionTimestamp")]
    alive = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
    return (state.observed and bool(stopping) and all(ready(p) for p in alive)
            and len(alive) + len(stopping) >= state.desired)


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
        drain = drain_of(pod)
        since = f", since {drain.since:%H:%M:%S}Z" if drain.since else ""
        return [f"pod {name}: draining (graceful stop, running builds finish; up to "
                f"{drain.grace}s{since})"]
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
           timeout: float | Deadline = 900, watch_seconds: int = 2,
           report_every: float = DRAIN_REPORT_SECONDS) -> Progress:
    """Print progress until the rollout is complete, or until the deadline.

    At the deadline a rollout whose only unfinished business is old executors
    draining (`settled`) is returned with `draining` set, not failed: they stop
    by themselves within their grace period. Anything else past the deadline, or
    the controller's ProgressDeadlineExceeded, is a UserError naming each stuck
    pod's reason. The pods are listed once, then watched from that
    resourceVersion, so no pod's draining or stop falls between two requests; a
    410 (history too old) lists again. While pods drain, they are listed with the
    time their stop began every `report_every` seconds.
    """
    deadline = timeout if isinstance(timeout, Deadline) else Deadline.after(timeout)
    # RFC 3339 in UTC, second precision, as the API writes lastUpdateTime: compared as text.
    began = datetime.datetime.now(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = object_path(workload)
    namespace = workload["metadata"]["namespace"]
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    seen: dict[str, str] = {}
    pods: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    last_line = ""
    last_drain_report = time.monotonic()
    version: str | None = None

    def feed(event: dict[str, Any]) -> None:
        pod = event["object"]
        if event["type"] == "DELETED":
            pods.pop(pod["metadata"]["name"], None)
        else:
            pods[pod["metadata"]["name"]] = pod
        for line in pod_lines(seen, event, time.monotonic(), started):
            out(line)

    def check() -> Progress | None:
        """The final progress once the rollout is done, or settled at the deadline; None
        while it goes on. Done only once the drained pods are gone too, so the report
        shows every old executor's graceful stop."""
        nonlocal last_line, last_drain_report
        current = cluster.get(path)
        if current is None:
            raise UserError(Problem(ref(workload), "", "disappeared during the rollout"))
        state = progress(current)
        draining = sum(s == "draining" for s in seen.values())
        line = state.line() + (f", {draining} draining" if draining else "")
        if line != last_line:
            out(line)
            last_line = line
        if draining and time.monotonic() - last_drain_report >= report_every:
            out(drain_line(drains(pods), datetime.datetime.now(datetime.UTC)))
            last_drain_report = time.monotonic()
        counted = replace(state, total=state.total + draining) if draining else state
        if counted.done:
            return counted
        progressing = condition(current, "Progressing") or {}
        # A ProgressDeadlineExceeded left from an earlier run (the pod template unchanged, so
        # the generation too) is not this wait's verdict: the ReplicaSet controller keeps
        # retrying pod creation with backoff, and once it succeeds the Deployment progresses
        # again. Only a verdict the controller reached after this wait began ends it early.
        gave_up = (state.observed and progressing.get("status") == "False"
                   and progressing.get("reason") == "ProgressDeadlineExceeded"
                   and str(progressing.get("lastUpdateTime") or "") > began)
        if not gave_up and not deadline.passed:
            return None
        if not gave_up and settled(state, pods):
            return replace(state, draining=tuple(drains(pods)))
        reasons = stuck(cluster, current) or [
            "no pod reports a reason; see `kubectl describe` of the workload and its pods"]
        head = (f"the rollout stopped: ProgressDeadlineExceeded after "
                f"{current['spec'].get('progressDeadlineSeconds', 600)}s without progress "
                f"({state.line()})" if gave_up else
                f"the rollout did not finish within {deadline.seconds:.0f}s ({state.line()})")
        raise UserError([Problem(ref(workload), "", head)]
                        + [Problem(ref(workload), "", r) for r in reasons])

    try:
        while True:
            if version is None:
                listing = cluster.request("GET", pods_path, {"labelSelector": selector(workload)})
                version = listing["metadata"].get("resourceVersion")
                pods.clear()
                for pod in listing.get("items", []):
                    feed({"type": "ADDED", "object": pod})
            final = check()
            if final is not None:
                return final
            wait = max(1, min(watch_seconds, int(deadline.remaining()) + 1))
            try:
                for event in cluster.watch(pods_path, timeout_seconds=wait,
                                           labelSelector=selector(workload),
                                           resourceVersion=version):
                    if event.get("type") == "ERROR":  # 410 Gone as an event: list again
                        version = None
                        break
                    version = event["object"]["metadata"].get("resourceVersion", version)
                    feed(event)
                    final = check()
                    if final is not None:
                        return final
            except ApiError as err:
                if err.status != 410:  # 410 Gone as the answer: the history is compacted
                    raise
                version = None
    except ApiError as err:
        raise explain(err, cluster.server, ref(workload)) from None


def ended(state: Progress, now: datetime.datetime | None = None) -> str:
    """What a finished wait says: complete, or which old executors still drain."""
    if not state.draining:
        return "rollout complete"
    now = now or datetime.datetime.now(datetime.UTC)
    pods = "; ".join(d.text(now) for d in state.draining)
    if state.complete:
        return (f"rollout complete: every executor runs the new template and is ready; "
                f"{len(state.draining)} old executor(s) still finishing their builds stop by "
                f"themselves: {pods}")
    return (f"the wait ended while old executors drain ({state.line()}): {pods}; the "
            "controller replaces the rest as each drain ends (nothing failed); rerun the "
            "same command to follow it")

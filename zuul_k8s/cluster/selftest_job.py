"""The self-test as a Kubernetes Job: the executor's own pod template (image,
securityContext, hostUsers, scheduling) with its command replaced by the
probe, which a ConfigMap mounts. One Job per node with --all-nodes, since one
node missing its SELinux module or seccomp profile is the typical failure.

`build` is pure (config objects in, ConfigMap and Jobs out); `run` creates
them, reads each report from the pod's log, explains a pod that never starts,
and deletes everything in `finally`, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zuul_k8s.cluster import podstatus
from zuul_k8s.cluster.client import APPLY_PATCH, FIELD_MANAGER, ApiError, Cluster, explain
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, Problem, UserError
from zuul_k8s.isolation import EXECUTOR_CONTAINER

PROBE_DIR = "/zuul-k8s"
PROBE_FILE = "probe.py"
TTL_MARGIN = 600  # the cluster removes a leftover Job even if the kit could not
RUN_LABEL = "zuul-k8s.io/selftest-run"
NODE_ANNOTATION = "zuul-k8s.io/selftest-node"
# Pod spec fields of the executor the probe keeps: what decides whether bwrap works,
# where the pod runs and how its image is pulled (the ServiceAccount's imagePullSecrets
# too). Secret volumes, probes and ports are the executor's own.
KEPT_POD_FIELDS = ("hostUsers", "securityContext", "nodeSelector", "tolerations", "affinity",
                   "priorityClassName", "runtimeClassName", "serviceAccountName",
                   "imagePullSecrets", "automountServiceAccountToken", "enableServiceLinks")
# Executor volumes the probe's pod mounts too, where the executor mounts them: with
# hostUsers: false every volume's filesystem must support idmap mounts (facts.md), so the
# Job exercises the state volume's kind. A PVC (StatefulSet volumeClaimTemplates) is not
# copied: the Job would need a claim of its own.
KEPT_VOLUME_KINDS = ("emptyDir",)
KEPT_CONTAINER_FIELDS = ("name", "image", "imagePullPolicy", "securityContext")
# The probe's own, small resources: the executor's requests (CPU, memory, the state
# disk) would keep the probe off a node where an executor already runs.
PROBE_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def _pin_to_node(spec: dict[str, Any], node: str) -> None:
    """Required node affinity on metadata.name, ANDed with the executor's own terms
    (the scheduler still checks taints and selectors, unlike nodeName)."""
    pin = {"key": "metadata.name", "operator": "In", "values": [node]}
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    for term in terms:
        term["matchFields"] = [*(term.get("matchFields") or []), pin]
    required["nodeSelectorTerms"] = terms


def build(workload: dict[str, Any], image: str | None, nodes: list[str | None], run_id: str,
          timeout: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The probe's ConfigMap and one Job per target node (None: wherever it schedules)."""
    from zuul_k8s.selftest import probe_source

    namespace = workload["metadata"]["namespace"]
    name = f"zuul-k8s-selftest-{run_id}"
    labels = {"app.kubernetes.io/name": "zuul", "app.kubernetes.io/component": "selftest",
              "app.kubernetes.io/managed-by": "zuul-k8s", RUN_LABEL: run_id}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": namespace, "labels": labels},
                 "data": {PROBE_FILE: probe_source().decode()}}
    template = workload["spec"]["template"]
    executor = next(c for c in template["spec"]["containers"] if c.get("name") == EXECUTOR_CONTAINER)
    jobs = []
    for index, node in enumerate(nodes):
        spec = {k: copy.deepcopy(template["spec"][k]) for k in KEPT_POD_FIELDS
                if k in template["spec"]}
        container = {k: copy.deepcopy(executor[k]) for k in KEPT_CONTAINER_FIELDS if k in executor}
        if image:
            container["image"] = image
        container["command"] = ["python3", f"{PROBE_DIR}/{PROBE_FILE}"]
        container["resources"] = copy.deepcopy(PROBE_RESOURCES)
        kept = [copy.deepcopy(v) for v in template["spec"].get("volumes") or []
                if any(kind in v for kind in KEPT_VOLUME_KINDS)]
        kept_names = {v["name"] for v in kept}
        container["volumeMounts"] = [
            {"name": "probe", "mountPath": PROBE_DIR, "readOnly": True},
            *(copy.deepcopy(m) for m in executor.get("volumeMounts") or []
              if m.get("name") in kept_names)]
        spec.update({"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                     "containers": [container],
                     "volumes": [{"name": "probe", "configMap": {"name": name, "defaultMode": 0o444}},
                                 *kept]})
        if node:
            _pin_to_node(spec, node)
        annotations = {NODE_ANNOTATION: node} if node else {}
        jobs.append({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{name}-{index}", "namespace": namespace, "labels": labels,
                         "annotations": annotations},
            # Outlives the whole run (every Job is waited for within `timeout`), so a Job
            # that finished first is still there to be read when the run gets to it.
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": timeout + TTL_MARGIN,
                     "activeDeadlineSeconds": timeout,
                     "template": {"metadata": {"labels": labels, "annotations": annotations},
                                  "spec": spec}},
        })
    return configmap, jobs


@dataclass
class Outcome:
    """One Job's result: a report, or why there is none."""

    job: str
    node: str | None
    report: dict[str, Any] | None = None
    problem: str | None = None
    pod: str | None = None
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report is not None and bool(self.report.get("ok"))


def target_nodes(cluster: Cluster, template: dict[str, Any], node: str | None,
                 all_nodes: bool) -> list[str | None]:
    from zuul_k8s.cluster.preflight import eligibility

    if node:
        return [node]
    if not all_nodes:
        return [None]
    nodes = cluster.request("GET", "/api/v1/nodes").get("items", [])
    eligible = [n["metadata"]["name"] for n in nodes if eligibility(n, template["spec"]) is None]
    if not eligible:
        raise UserError(Problem("--all-nodes", "", "no node is eligible for the executor "
                                "(nodeSelector/tolerations); `zuul-k8s preflight` shows why"))
    return list(eligible)


# Hard failures: retrying will not help, so the wait ends at once.
HARD_EVENT_REASONS = ("FailedCreate", "Failed")


def _job_pod(cluster: Cluster, job: dict[str, Any]) -> dict[str, Any] | None:
    ns = job["metadata"]["namespace"]
    pods = cluster.request("GET", f"/api/v1/namespaces/{ns}/pods",
                           {"labelSelector": f"job-name={job['metadata']['name']}"}).get("items", [])
    return pods[0] if pods else None


def wait_for(cluster: Cluster, job: dict[str, Any], outcome: Outcome, start_timeout: float,
             timeout: float, say: Callable[[str], None], begun: float | None = None) -> None:
    """Wait for the Job's pod to finish and read its report, or explain why it cannot.
    `begun`: when the Jobs were created; the Jobs run side by side, so every wait counts
    from then and N nodes take as long as the slowest, not N times one."""
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    begun = time.monotonic() if begun is None else begun
    announced = False
    while True:
        pod = _job_pod(cluster, job)
        phase = (pod or {}).get("status", {}).get("phase")
        if pod is not None:
            outcome.pod = pod["metadata"]["name"]
            if not announced and pod["spec"].get("nodeName"):
                say(f"{ref(job)}: pod {outcome.pod} runs on {pod['spec']['nodeName']}")
                outcome.node = outcome.node or pod["spec"]["nodeName"]
                announced = True
        if phase in ("Succeeded", "Failed"):
            read_report(cluster, pod, outcome)
            return
        events = podstatus.events_for(cluster, ns, outcome.pod) if outcome.pod else []
        events += podstatus.events_for(cluster, ns, name)
        why = podstatus.explain(pod, events)
        hard = any(e.get("reason") in HARD_EVENT_REASONS and e.get("type") == "Warning"
                   for e in events)
        waited = time.monotonic() - begun
        if why and (hard or waited > start_timeout):
            outcome.problem = f"the probe's pod never started: {why}"
            return
        if phase != "Running" and waited > start_timeout:
            outcome.problem = (f"the probe's pod did not start within {start_timeout:.0f}s "
                               f"(phase {phase or 'not created'})")
            return
        if waited > timeout:
            outcome.problem = f"the probe did not finish within {timeout:.0f}s"
            return
        time.sleep(0.5)


def terminated(pod: dict[str, Any]) -> str:
    """The executor container's end as the kubelet recorded it (reason, message, exit code)."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") != EXECUTOR_CONTAINER:
            continue
        end = (status.get("state") or {}).get("terminated") or {}
        if end:
            words = [str(end.get("reason") or ""), str(end.get("message") or "").strip()]
            return (f"the container ended with exit code {end.get('exitCode')}"
                    + (f": {': '.join(w for w in words if w)}" if any(words) else ""))
    return ""


def read_report(cluster: Cluster, pod: dict[str, Any], outcome: Outcome) -> None:
    """The probe's report from the executor container's log; when there is none (the
    runtime refused the container, the log is gone), why, from the container's end."""
    from zuul_k8s.selftest import report

    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    rejected = podstatus.rejection(pod)
    if rejected:
        outcome.problem = f"the probe's pod never started: {rejected}"
        return
    ended = terminated(pod)
    try:
        log = cluster.text(f"/api/v1/namespaces/{ns}/pods/{name}/log", container=EXECUTOR_CONTAINER)
    except ApiError as err:  # e.g. 400 for a container that never started
        outcome.problem = f"no log ({err.status} {err.message})" + (f"; {ended}" if ended else "")
        return
    try:
        outcome.report = dict(report.parse_log(log, f"the probe's report from {name}"))
    except UserError as exc:
        outcome.problem = str(exc) + (f"; {ended}" if ended else "")


def cleanup(cluster: Cluster, configmap: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    """Delete the Jobs (with their pods) and the ConfigMap; a missing one is fine."""
    for obj in [*jobs, configmap]:
        query = {"propagationPolicy": "Background"} if obj["kind"] == "Job" else {}
        try:
            cluster.request("DELETE", object_path(obj), query)
        except ApiError as err:
            if err.status != 404:
                print(f"warning: could not delete {ref(obj)}: {explain(err, cluster.server)}",
                      file=sys.stderr)
        except UserError as exc:
            print(f"warning: could not delete {ref(obj)}: {exc}", file=sys.stderr)


def run(cluster: Cluster, workload: dict[str, Any], *, image: str | None = None,
        node: str | None = None, all_nodes: bool = False, timeout: int = 300,
        start_timeout: float = 120, say: Callable[[str], None] = print) -> list[Outcome]:
    """Run the probe as Job(s) shaped like `workload`'s pods; always clean up."""
    template = workload["spec"]["template"]
    run_id = uuid.uuid4().hex[:8]
    try:
        nodes = target_nodes(cluster, template, node, all_nodes)
    except ApiError as err:
        raise explain(err, cluster.server, "selftest") from None
    configmap, jobs = build(workload, image, nodes, run_id, timeout)
    outcomes = [Outcome(j["metadata"]["name"], n) for j, n in zip(jobs, nodes, strict=True)]
    created: list[dict[str, Any]] = []
    try:
        for obj in [configmap, *jobs]:
            # Recorded before the request: a Ctrl-C while the PATCH is in flight (the server
            # may have created it already) still deletes it; deleting a missing one is fine.
            created.append(obj)
            try:
                cluster.request("PATCH", object_path(obj), {"fieldManager": FIELD_MANAGER},
                                obj, APPLY_PATCH)
            except ApiError as err:
                raise explain(err, cluster.server, ref(obj)) from None
        say(f"self-test {run_id}: {len(jobs)} Job(s) in namespace "
            f"{configmap['metadata']['namespace']}, image "
            f"{jobs[0]['spec']['template']['spec']['containers'][0]['image']}")
        begun = time.monotonic()
        for job, outcome in zip(jobs, outcomes, strict=True):
            try:
                wait_for(cluster, job, outcome, start_timeout, timeout, say, begun)
            except ApiError as err:
                raise explain(err, cluster.server, ref(job)) from None
    finally:
        if created:
            cleanup(cluster, configmap, [o for o in created if o["kind"] == "Job"])
            say(f"self-test {run_id}: cleaned up")
    return outcomes


def render_outcomes(outcomes: list[Outcome], output: str = "text") -> str:
    """The same table and diagnosis as `selftest --local`, one per node."""
    import json

    from zuul_k8s.selftest.diagnosis import diagnose
    from zuul_k8s.selftest.output import as_document, format_table

    if output == "json":
        docs = []
        for o in outcomes:
            doc: dict[str, Any] = {"node": o.node, "job": o.job, "pod": o.pod, "problem": o.problem}
            if o.report is not None:
                doc.update(as_document(o.report, diagnose(o.report)))  # type: ignore[arg-type]
            docs.append(doc)
        return json.dumps({"ok": all(o.ok for o in outcomes), "nodes": docs}, indent=2) + "\n"
    parts = []
    for o in outcomes:
        head = f"node {o.node or '(any)'} (pod {o.pod or '-'}):"
        if o.report is None:
            parts.append(f"{head}\n  no report: {o.problem}\n")
        else:
            parts.append(f"{head}\n{format_table(o.report, diagnose(o.report))}")  # type: ignore[arg-type]
    failed = [o.node or "(any)" for o in outcomes if not o.ok]
    verdict = ("self-test passed on every node" if not failed
               else f"self-test FAILED on: {', '.join(failed)}")
    return "\n".join(parts) + verdict + "\n"


def executor_workload(config: Any) -> dict[str, Any]:
    from zuul_k8s.render import render

    return next(o for o in render(config) if o["kind"] in ("Deployment", "StatefulSet"))


def run_cluster_selftest(args: argparse.Namespace) -> int:
    """`zuul-k8s selftest` against the cluster (the CLI's selftest without --local)."""
    from zuul_k8s.config import load_config

    config = load_config(args.config)
    cluster = Cluster.connect(args.kubeconfig)
    outcomes = run(cluster, executor_workload(config), image=args.image, node=args.node,
                   all_nodes=args.all_nodes, timeout=int(args.timeout), start_timeout=args.start_timeout,
                   say=lambda line: print(line, file=sys.stderr, flush=True))
    sys.stdout.write(render_outcomes(outcomes, args.output))
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED


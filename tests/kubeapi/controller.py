"""The controllers and the kubelet of the double: Deployments, StatefulSets and
Jobs become Pods; Pods are scheduled onto the double's Nodes, pull their image,
become Ready, and terminate gracefully. Nothing runs: a Job pod exits 0 with an
empty log (the probe's real runs are the real cluster tests', on KWOK nodes).

One thread, ticking: every step is a small pure-ish function of the store.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
import uuid
from typing import Any

from tests.kubeapi.server import ApiServer, HttpError, now


def node(name: str, *, kernel: str = "6.8.0-45-generic", runtime: str = "containerd://2.0.2",
         kubelet: str = "v1.35.0", os_image: str = "Ubuntu 24.04.1 LTS",
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {"nodeInfo": {"kernelVersion": kernel, "containerRuntimeVersion": runtime,
                                "kubeletVersion": kubelet, "osImage": os_image,
                                "operatingSystem": "linux", "architecture": "amd64"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _parse_time(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC).timestamp()


def tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    if taint.get("effect") not in ("NoSchedule", "NoExecute"):
        return True
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists" and tol.get("key") in (None, "", taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _term_matches(term: dict[str, Any], node_obj: dict[str, Any]) -> bool:
    labels = node_obj["metadata"].get("labels") or {}
    for expr in term.get("matchExpressions") or []:
        if expr.get("operator") == "In" and labels.get(expr["key"]) not in expr.get("values", []):
            return False
    for expr in term.get("matchFields") or []:
        if expr.get("key") == "metadata.name" and node_obj["metadata"]["name"] not in expr.get("values", []):
            return False
    return True


def fits(pod_spec: dict[str, Any], node_obj: dict[str, Any]) -> bool:
    if node_obj["spec"].get("unschedulable"):  # cordoned
        return False
    labels = node_obj["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = pod_spec.get("tolerations") or []
    if not all(tolerated(t, tolerations) for t in node_obj["spec"].get("taints") or []):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(t, node_obj) for t in terms)


class Controller:
    def __init__(self, api: ApiServer, tick: float = 0.05) -> None:
        self.api, self.tick = api, tick
        self.started: dict[str, float] = {}  # pod uid -> when its container started
        self.terminating: dict[str, float] = {}  # pod uid -> when its graceful stop began
        self.failures: dict[str, str] = {}  # ReplicaSet uid -> why its last pod create failed
        self.progressed: dict[str, tuple[Any, float]] = {}  # Deployment uid -> (counts, when)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                with self.api.lock:
                    self.step()
            except Exception as exc:  # keep the double alive; the test sees the symptom
                import traceback
                traceback.print_exception(exc)
            self.stop.wait(self.tick)

    def step(self) -> None:
        for dep in self.api.list("Deployment"):
            self.deployment(dep)
        for sts in self.api.list("StatefulSet"):
            self.statefulset(sts)
        for job in self.api.list("Job"):
            self.job(job)
        for pod in self.api.list("Pod"):
            self.kubelet(pod)

    # --- pods ------------------------------------------------------------------------

    def create_pod(self, owner: dict[str, Any], kind: str, name: str, template: dict[str, Any],
                   labels: dict[str, str]) -> str | None:
        """Create the pod, or record why admission denied it (an event on the owner, as the
        ReplicaSet, StatefulSet and Job controllers do) and return that message."""
        meta = owner["metadata"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": meta["namespace"],
                         "labels": {**(template.get("metadata", {}).get("labels") or {}), **labels},
                         "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
                         "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": kind,
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True}]},
            "spec": json.loads(json.dumps(template["spec"])),
            "status": {"phase": "Pending"},
        }
        try:
            self.api.admit_pod(pod)
        except HttpError as exc:
            message = f"Error creating: {exc.body['message']}"
            self.api.event(owner, kind, "FailedCreate", message)
            return message
        self.api.store("Pod", pod, created=True)
        return None

    def owned(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [p for p in self.api.list("Pod", owner["metadata"]["namespace"])
                if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])]

    @staticmethod
    def ready(pod: dict[str, Any]) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in pod["status"].get("conditions") or [])

    def set_status(self, kind: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") != status:
            obj["status"] = status
            self.api.store(kind, obj)

    def kubelet(self, pod: dict[str, Any]) -> None:
        meta, spec, st = pod["metadata"], pod["spec"], pod["status"]
        uid = meta["uid"]
        if "deletionTimestamp" in meta:
            return self.terminate(pod)
        if st.get("phase") in ("Succeeded", "Failed"):
            return None
        if not spec.get("nodeName"):
            nodes = [n for n in self.api.list("Node") if fits(spec, n)]
            if not nodes:
                total = len(self.api.list("Node"))
                if not any(c.get("reason") == "Unschedulable" for c in st.get("conditions") or []):
                    st["conditions"] = [{"type": "PodScheduled", "status": "False",
                                         "reason": "Unschedulable",
                                         "message": f"0/{total} nodes are available: {total} node(s) "
                                                    "didn't match Pod's node affinity/selector."}]
                    self.api.store("Pod", pod)
                    self.api.event(pod, "Pod", "FailedScheduling", st["conditions"][0]["message"])
                return None
            used = {p["spec"].get("nodeName") for p in self.api.list("Pod", meta["namespace"])}
            chosen = next((n for n in nodes if n["metadata"]["name"] not in used), nodes[0])
            spec["nodeName"] = chosen["metadata"]["name"]
            st["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            self.api.store("Pod", pod)
            self.api.event(pod, "Pod", "Scheduled", f"Successfully assigned {meta['namespace']}/"
                           f"{meta['name']} to {spec['nodeName']}", "Normal")
            return None
        container = spec["containers"][0]
        image = container.get("image", "")
        job_pod = any(o.get("kind") == "Job" for o in meta.get("ownerReferences") or [])
        if uid not in self.started:
            self.started[uid] = time.monotonic()
            st.update({"phase": "Running", "podIP": f"10.0.0.{len(self.started) % 250 + 2}",
                       "startTime": now(),
                       "containerStatuses": [{"name": container["name"], "image": image,
                                              "ready": False, "started": True,
                                              "state": {"running": {"startedAt": now()}}}]})
            self.api.store("Pod", pod)
            if job_pod:
                self.api.logs[(meta["namespace"], meta["name"])] = ""
            return None
        if job_pod:
            return self.job_pod_progress(pod)
        if not self.ready(pod) and time.monotonic() - self.started[uid] >= self.api.nodes_ready_delay:
            st["conditions"] = [{"type": "PodScheduled", "status": "True"},
                                {"type": "Ready", "status": "True"}]
            st["containerStatuses"][0]["ready"] = True
            self.api.logs.setdefault((meta["namespace"], meta["name"]), "")
            self.api.store("Pod", pod)
        return None

    def job_pod_progress(self, pod: dict[str, Any]) -> None:
        """The pod's container exits 0 at once."""
        st = pod["status"]
        st["phase"] = "Succeeded"
        st["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                                              "finishedAt": now()}}
        self.api.store("Pod", pod)

    def terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if self.ready(pod):
            pod["status"]["conditions"] = [c for c in pod["status"]["conditions"] if c["type"] != "Ready"]
            pod["status"]["conditions"].append({"type": "Ready", "status": "False"})
            self.api.store("Pod", pod)
            self.api.event(pod, "Pod", "Killing", "Stopping container "
                           f"{pod['spec']['containers'][0]['name']}", "Normal")
        since = self.terminating.setdefault(meta["uid"], time.monotonic())
        wait = min(float(meta.get("deletionGracePeriodSeconds", 30)), self.api.drain_seconds)
        if time.monotonic() - since >= wait:
            self.api.drop("Pod", meta["namespace"], meta["name"])
            self.started.pop(meta["uid"], None)
            self.terminating.pop(meta["uid"], None)

    # --- workloads -------------------------------------------------------------------

    def replicaset(self, dep: dict[str, Any], current: str) -> dict[str, Any]:
        """The Deployment's ReplicaSet for its current template (created once, reused when a
        rollback brings the same template back), owning that template's pods."""
        meta, template = dep["metadata"], dep["spec"]["template"]
        name = f"{meta['name']}-{current[:10]}"
        found = self.api.find("ReplicaSet", meta["namespace"], name)
        if found is not None:
            return found
        labels = {**(template.get("metadata", {}).get("labels") or {}), "pod-template-hash": current}
        return self.api.store("ReplicaSet", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True}]},
            "spec": {"replicas": 0, "selector": dep["spec"]["selector"],
                     "template": json.loads(json.dumps(template))},
            "status": {"replicas": 0}}, created=True)

    def deployment(self, dep: dict[str, Any]) -> None:
        spec, meta = dep["spec"], dep["metadata"]
        desired = spec.get("replicas", 1)
        current = template_hash(spec["template"])
        rs = self.replicaset(dep, current)
        sets = [r for r in self.api.list("ReplicaSet", meta["namespace"])
                if any(o.get("uid") == meta["uid"] for o in r["metadata"].get("ownerReferences") or [])]
        pods = [p for r in sets for p in self.owned(r)]
        alive = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        new = [p for p in alive if p["metadata"]["labels"].get("pod-template-hash") == current]
        old = [p for p in alive if p not in new]
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        surge = int(rolling.get("maxSurge", 1))
        unavailable = int(rolling.get("maxUnavailable", 0))
        ready = [p for p in alive if self.ready(p)]
        if len(new) < desired and len(alive) < desired + surge:
            name = f"{rs['metadata']['name']}-{uuid.uuid4().hex[:5]}"
            failure = self.create_pod(rs, "ReplicaSet", name, spec["template"],
                                      {"pod-template-hash": current})
            if failure:
                self.failures[rs["metadata"]["uid"]] = failure
            else:
                self.failures.pop(rs["metadata"]["uid"], None)
        elif any(not self.ready(p) for p in old):  # unhealthy old pods go first (as upstream)
            victim = next(p for p in old if not self.ready(p))
            self.api.delete("Pod", victim["metadata"]["namespace"], victim["metadata"]["name"])
        elif old and len(ready) > desired - unavailable:
            victim = sorted(old, key=lambda p: (self.ready(p), p["metadata"]["name"]))[0]
            self.api.delete("Pod", victim["metadata"]["namespace"], victim["metadata"]["name"])
        elif len(new) > desired:
            victim = new[-1]
            self.api.delete("Pod", victim["metadata"]["namespace"], victim["metadata"]["name"])
        for r in sets:
            mine = [p for p in alive if p in self.owned(r)]
            self.set_status("ReplicaSet", r, {
                "replicas": len(mine), "readyReplicas": sum(self.ready(p) for p in mine),
                "observedGeneration": r["metadata"]["generation"]})
        self.set_status("Deployment", dep, {
            "observedGeneration": meta["generation"],
            "replicas": len(alive), "updatedReplicas": len(new),
            "readyReplicas": len(ready), "availableReplicas": len(ready),
            "unavailableReplicas": max(0, desired - len(ready)),
            "conditions": self.deployment_conditions(dep, rs, len(new), len(ready), desired),
        })

    def deployment_conditions(self, dep: dict[str, Any], rs: dict[str, Any], updated: int,
                              ready: int, desired: int) -> list[dict[str, Any]]:
        """Available, Progressing (False with ProgressDeadlineExceeded once the rollout made
        no progress for spec.progressDeadlineSeconds) and ReplicaFailure, as upstream."""
        uid = dep["metadata"]["uid"]
        counts = (dep["metadata"]["generation"], updated, ready)
        before = self.progressed.get(uid)
        if before is None or before[0] != counts:
            self.progressed[uid] = before = (counts, time.monotonic())
        done = updated == desired and ready == desired
        deadline = float(dep["spec"].get("progressDeadlineSeconds", 600))
        if done:
            progressing = {"type": "Progressing", "status": "True",
                           "reason": "NewReplicaSetAvailable",
                           "message": f'ReplicaSet "{rs["metadata"]["name"]}" has successfully '
                                      "progressed."}
        elif time.monotonic() - before[1] > deadline:
            progressing = {"type": "Progressing", "status": "False",
                           "reason": "ProgressDeadlineExceeded",
                           "message": f'ReplicaSet "{rs["metadata"]["name"]}" has timed out '
                                      "progressing."}
        else:
            progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                           "message": f'ReplicaSet "{rs["metadata"]["name"]}" is progressing.'}
        conditions = [{"type": "Available", "status": "True" if ready >= desired else "False",
                       "reason": "MinimumReplicasAvailable" if ready >= desired
                       else "MinimumReplicasUnavailable"}, progressing]
        failure = self.failures.get(rs["metadata"]["uid"])
        if failure:
            conditions.append({"type": "ReplicaFailure", "status": "True",
                               "reason": "FailedCreate", "message": failure})
        return conditions

    def statefulset(self, sts: dict[str, Any]) -> None:
        spec, meta = sts["spec"], sts["metadata"]
        desired = spec.get("replicas", 1)
        revision = f"{meta['name']}-{template_hash(spec['template'])}"
        pods = {p["metadata"]["name"]: p for p in self.owned(sts)}
        names = [f"{meta['name']}-{i}" for i in range(desired)]
        for name in names:
            if name not in pods:
                self.create_pod(sts, "StatefulSet", name, spec["template"],
                                {"controller-revision-hash": revision,
                                 "statefulset.kubernetes.io/pod-name": name})
        alive = [p for p in pods.values() if "deletionTimestamp" not in p["metadata"]]
        ready = [p for p in alive if self.ready(p)]
        updated = [p for p in alive if p["metadata"]["labels"].get("controller-revision-hash") == revision]
        if len(ready) == desired == len(alive):
            stale = [n for n in reversed(names) if n in pods
                     and pods[n]["metadata"]["labels"].get("controller-revision-hash") != revision]
            if stale:
                self.api.delete("Pod", meta["namespace"], stale[0])
        self.set_status("StatefulSet", sts, {
            "observedGeneration": meta["generation"], "replicas": len(alive),
            "readyReplicas": len(ready), "availableReplicas": len(ready),
            "updatedReplicas": len(updated), "currentReplicas": len(alive),
            "updateRevision": revision,
            "currentRevision": revision if len(updated) == desired else sts.get("status", {}).get(
                "currentRevision", revision),
        })

    def job(self, job: dict[str, Any]) -> None:
        meta, st = job["metadata"], dict(job.get("status") or {})
        finished = next((c for c in st.get("conditions") or [] if c["type"] in ("Complete", "Failed")),
                        None)
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if finished:
            if ttl is not None and time.time() - _parse_time(finished["lastTransitionTime"]) >= ttl:
                self.api.drop("Job", meta["namespace"], meta["name"])
            return
        pods = self.owned(job)
        if not pods:
            if not st.get("active") and not st.get("failed"):
                name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
                labels = {"job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"],
                          "controller-uid": meta["uid"]}
                self.create_pod(job, "Job", name, job["spec"]["template"], labels)
            return
        phases = [p["status"].get("phase") for p in pods]
        st["active"] = sum(ph in ("Pending", "Running") for ph in phases)
        st["succeeded"] = phases.count("Succeeded")
        st["failed"] = phases.count("Failed")
        st.setdefault("startTime", now())
        if st["succeeded"]:
            st["conditions"] = [{"type": "Complete", "status": "True", "lastTransitionTime": now()}]
        elif st["failed"] > job["spec"].get("backoffLimit", 6):
            st["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                 "lastTransitionTime": now()}]
        self.set_status("Job", job, st)

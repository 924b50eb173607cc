"""Why a pod is not running: its state and events, read as one sentence.

Pure: a pod dict and its events in, an explanation (or None) out. Rules as
data: the event reasons and waiting reasons that mean "never starts", each
with the fix to try.
"""

from __future__ import annotations

from typing import Any

# Event reason -> (what it means, the fix).
EVENT_REASONS: dict[str, tuple[str, str]] = {
    "FailedScheduling": ("no node can take the pod (unschedulable)",
                         "check nodeSelector/tolerations in the config against the nodes' labels "
                         "and taints (`zuul-k8s preflight` lists the eligible nodes)"),
    "FailedCreate": ("the pod was not created (admission denied it)",
                     "the namespace's Pod Security labels refuse the pod: see `zuul-k8s "
                     "preflight` and `zuul-k8s validate`"),
    "Failed": ("the container could not start (image pull or runtime error)",
               "check the image name and tag, and that the nodes can pull it (imagePullSecrets)"),
    "BackOff": ("the container keeps failing to start", "see the pod's logs and events"),
}

# (event reason, words in its message) -> a more precise meaning than the reason alone.
EVENT_MESSAGES: dict[tuple[str, str], str] = {
    ("Failed", "pull image"): "the image cannot be pulled",
    ("Failed", "ErrImagePull"): "the image cannot be pulled",
}

WAITING_REASONS: dict[str, str] = {
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image name is invalid",
    "CreateContainerConfigError": "the container's config is broken (a missing Secret or key?)",
    "CreateContainerError": "the runtime could not create the container",
}


def explain(pod: dict[str, Any] | None, events: list[dict[str, Any]]) -> str | None:
    """The reason a pod (or, when None, its owner's pod) does not run, or None.

    A container's waiting reason is the most specific; then the latest warning
    event that means "never starts"; then the scheduler's condition.
    """
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS]
    for status in (pod or {}).get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_REASONS:
            detail = warnings[-1].get("message") if warnings else waiting.get("message", "")
            return (f"{WAITING_REASONS[waiting['reason']]}: {waiting['reason']}: {detail}; fix: "
                    f"{EVENT_REASONS['Failed'][1]}")
    if warnings:
        last = warnings[-1]
        meaning, fix = EVENT_REASONS[last["reason"]]
        meaning = next((m for (reason, words), m in EVENT_MESSAGES.items()
                        if reason == last["reason"] and words in str(last.get("message", ""))),
                       meaning)
        return f"{meaning}: {last.get('reason')}: {last.get('message', '')}; fix: {fix}"
    for condition in (pod or {}).get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return (f"{EVENT_REASONS['FailedScheduling'][0]}: "
                    f"{condition.get('message', condition.get('reason', ''))}; "
                    f"fix: {EVENT_REASONS['FailedScheduling'][1]}")
    return None


def events_for(cluster: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    """The events about one object (pod or Job), oldest first."""
    items = cluster.request("GET", f"/api/v1/namespaces/{namespace}/events",
                            {"fieldSelector": f"involvedObject.name={name}"}).get("items", [])
    return sorted(items, key=lambda e: e.get("lastTimestamp") or "")

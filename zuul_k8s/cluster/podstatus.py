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
    "FailedCreate": ("the controller could not create the pod",
                     "read the event's message: the API server refused the pod"),
    "FailedCreatePodSandBox": ("the node could not create the pod's sandbox",
                               "read the event's message on the node's runtime; `zuul-k8s "
                               "preflight` checks each node's runtime"),
    "Failed": ("the container could not start (image pull or runtime error)",
               "check the image name and tag, and that the nodes can pull it (imagePullSecrets)"),
    "BackOff": ("the container keeps failing to start", "see the pod's logs and events"),
}

# (event reason, words in its message) -> a more precise meaning and fix than the reason
# alone. FailedCreate messages are the API server's refusal as the ReplicaSet/Job
# controller records it; the user-namespace one is the kubelet's
# (pkg/kubelet/userns/userns_manager.go).
EVENT_MESSAGES: dict[tuple[str, str], tuple[str, str]] = {
    ("Failed", "pull image"): ("the image cannot be pulled", EVENT_REASONS["Failed"][1]),
    ("Failed", "ErrImagePull"): ("the image cannot be pulled", EVENT_REASONS["Failed"][1]),
    ("FailedCreate", "violates PodSecurity"): (
        "Pod Security admission denied the pod",
        "the namespace's Pod Security labels refuse the pod: see `zuul-k8s preflight` and "
        "`zuul-k8s validate`"),
    ("FailedCreate", "exceeded quota"): (
        "a ResourceQuota refused the pod", "raise the namespace's ResourceQuota, or lower "
        "resources.requests in the config"),
    ("FailedCreate", "admission webhook"): (
        "an admission webhook refused the pod", "read the webhook's reason in the message; "
        "the cluster's admins own that policy"),
    ("FailedCreate", "being terminated"): (
        "the namespace is being deleted", "wait until it is gone, then apply again"),
    ("FailedCreate", "error looking up service account"): (
        "the pod's ServiceAccount does not exist", "apply the kit's objects (the ServiceAccount "
        "comes with them)"),
    # containerd (contrib/seccomp/seccomp.go): `cannot load seccomp profile "PATH": ...`;
    # CRI-O: `... seccomp profile ... no such file or directory`.
    ("Failed", "seccomp profile"): (
        "the node lacks the pod's Localhost seccomp profile",
        "run `zuul-k8s nodes prepare` on the node (it installs profiles/zuul-executor.json in "
        "the kubelet's seccomp root), or keep the executor off unprepared nodes"),
    ("FailedCreatePodSandBox", "does not support user namespaces"): (
        "the node's runtime does not support user namespaces (hostUsers: false)",
        "run the executor on nodes with containerd 2.0+ or CRI-O 1.25+ (scheduling.nodeSelector); "
        "`zuul-k8s preflight` reads each node's runtime handlers"),
}

WAITING_REASONS: dict[str, str] = {
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image name is invalid",
    "CreateContainerConfigError": "the container's config is broken (a missing Secret or key?)",
    "CreateContainerError": "the runtime could not create the container",
}

KUBELET_ECHOES = {f"Error: {reason}" for reason in WAITING_REASONS}

# A pod the kubelet rejects at admission ends Failed at once, with no container and no
# log: status.reason and status.message say why (kubernetes pkg/kubelet/lifecycle).
# AppArmor: the kubelet rejects any pod asking for a profile other than Unconfined on a
# host without AppArmor (pkg/security/apparmor/validate.go: "Cannot enforce AppArmor:
# AppArmor is not enabled on the host"), which is every RHEL, Fedora CoreOS or Amazon
# Linux node.
POD_REJECTIONS: dict[str, tuple[str, str]] = {
    "AppArmor": ("the node runs no AppArmor, and the pod asks for an AppArmor profile",
                 "on clusters whose nodes run no AppArmor, set isolation.apparmor: none; on mixed "
                 "clusters keep the executor on AppArmor nodes (scheduling.nodeSelector)"),
}
REJECTED = ("the kubelet rejected the pod", "read the pod's status.message on that node")


def rejection(pod: dict[str, Any] | None) -> str | None:
    """Why the kubelet rejected the pod outright (no container ever ran), or None."""
    status = (pod or {}).get("status") or {}
    if status.get("phase") != "Failed" or status.get("containerStatuses") or not status.get("reason"):
        return None
    meaning, fix = POD_REJECTIONS.get(str(status["reason"]), REJECTED)
    return f"{meaning}: {status['reason']}: {status.get('message', '')}; fix: {fix}"


def _meaning(reason: str, message: str, default: tuple[str, str]) -> tuple[str, str]:
    """What an event's (or waiting state's) own words say, beyond its reason."""
    return next((found for (known, words), found in EVENT_MESSAGES.items()
                 if known == reason and words in message), default)


def explain(pod: dict[str, Any] | None, events: list[dict[str, Any]]) -> str | None:
    """The reason a pod (or, when None, its owner's pod) does not run, or None.

    A container's waiting reason is the most specific; then the latest warning
    event that means "never starts"; then the scheduler's condition.
    """
    rejected = rejection(pod)
    if rejected:
        return rejected
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS]
    # The kubelet records the runtime's words (`Failed to pull image "...": <why>`), then
    # echoes the waiting reason (`Error: ErrImagePull`): the words say more (kubelet 1.35).
    warnings = [e for e in warnings if e.get("message") not in KUBELET_ECHOES] or warnings
    for status in (pod or {}).get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_REASONS:
            detail = waiting.get("message") or (warnings[-1].get("message") if warnings else "")
            meaning, fix = _meaning("Failed", str(detail),
                                    (WAITING_REASONS[waiting["reason"]], EVENT_REASONS["Failed"][1]))
            return f"{meaning}: {waiting['reason']}: {detail}; fix: {fix}"
    if warnings:
        last = warnings[-1]
        meaning, fix = _meaning(last["reason"], str(last.get("message", "")), EVENT_REASONS[last["reason"]])
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

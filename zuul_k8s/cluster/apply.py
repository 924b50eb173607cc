"""Server-side apply of the rendered objects, in dependency order.

One PATCH per object with `application/apply-patch+yaml` and field manager
`zuul-k8s` (kubernetes.io/docs/reference/using-api/server-side-apply/): the
server merges, records which manager owns which field, and answers 409 when
another manager owns a field the config sets differently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.cluster.client import APPLY_PATCH, FIELD_MANAGER, ApiError, Cluster, explain
from zuul_k8s.cluster.resources import apply_order, object_path, ref
from zuul_k8s.cluster.stored import changed_by_server
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.workloads import pod_template

# Sent and stored are judged at one version, so version-gated findings cancel out.
STORED_CHECK_MINOR = 35


@dataclass(frozen=True)
class Applied:
    ref: str
    action: str  # created | configured | unchanged | not checked
    obj: dict[str, Any]

    def line(self, dry_run: bool) -> str:
        suffix = " (server dry run)" if dry_run and not self.action.startswith("not") else ""
        return f"{self.ref}: {self.action}{suffix}"


def _action(before: dict[str, Any] | None, after: dict[str, Any], dry_run: bool) -> str:
    """created, configured or unchanged: what is stored, compared without the parts the
    server and controllers write (status, resourceVersion, managedFields). A controller's
    status update between the GET and the PATCH bumps resourceVersion, so comparing
    resourceVersions alone would call an unchanged object "configured"."""
    if before is None:
        return "created"
    if not dry_run and before["metadata"].get("resourceVersion") == \
            after["metadata"].get("resourceVersion"):
        return "unchanged"
    strip = ("managedFields", "resourceVersion")

    def body(o: dict[str, Any]) -> Any:
        return {**{k: v for k, v in o.items() if k != "status"},
                "metadata": {k: v for k, v in o["metadata"].items() if k not in strip}}
    return "unchanged" if body(before) == body(after) else "configured"


def dry_run(cluster: Cluster, obj: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    """What the server would store for `obj` (server-side apply, dryRun=All)."""
    return cluster.request("PATCH", object_path(obj), {"fieldManager": FIELD_MANAGER,
                                                       "force": "true" if force else None,
                                                       "dryRun": "All"}, obj, APPLY_PATCH)


def apply_one(cluster: Cluster, obj: dict[str, Any], *, force: bool = False,
              dry: bool = False) -> Applied:
    """Apply one object. One that makes pods is first applied as a server dry run and
    refused, unstored, when the server would drop its isolation settings (stored.py)."""
    path = object_path(obj)
    try:
        before = cluster.get(path)
        after = None
        if dry or pod_template(obj) is not None:
            after = dry_run(cluster, obj, force=force)
            changed = changed_by_server(obj, after, STORED_CHECK_MINOR)
            if changed:
                raise UserError([Problem(ref(obj), f.path, f"{f.message}; fix: {f.fix}") for f in changed])
        if not dry:
            after = cluster.request("PATCH", path, {"fieldManager": FIELD_MANAGER,
                                                    "force": "true" if force else None}, obj, APPLY_PATCH)
    except ApiError as err:
        raise explain(err, cluster.server, ref(obj)) from None
    assert after is not None
    return Applied(ref(obj), _action(before, after, dry), after)


def apply_objects(cluster: Cluster, objects: list[dict[str, Any]], *, force: bool = False,
                  dry_run: bool = False,
                  report: Callable[[Applied], None] = lambda _: None) -> list[Applied]:
    """Apply every object (Namespace first, PDB last); stop at the first refusal.

    In a dry run a namespace that does not exist yet is not created, so the
    server cannot check the objects that go into it: they are reported as
    "not checked" instead of failing with 404.
    """
    done: list[Applied] = []
    missing_namespaces: set[str] = set()
    for obj in apply_order(objects):
        namespace = obj["metadata"].get("namespace")
        if dry_run and namespace in missing_namespaces:
            result = Applied(ref(obj), f"not checked (namespace {namespace} would be created first)",
                             obj)
        else:
            result = apply_one(cluster, obj, force=force, dry=dry_run)
            if dry_run and obj["kind"] == "Namespace" and result.action == "created":
                missing_namespaces.add(obj["metadata"]["name"])
        report(result)
        done.append(result)
    return done


WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workload_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] in WORKLOAD_KINDS)


def keep_zuul_conf_checksum(objects: list[dict[str, Any]],
                            live: dict[str, Any] | None) -> str | None:
    """Without --zuul-conf the render has no checksum annotation; applied as is, server-side
    apply would remove the one the cluster has (zuul-k8s owns it), changing the pod
    template and rolling every executor. Copy the live value into the rendered template
    instead, and return it (None: nothing to keep, or the render has its own)."""
    from zuul_k8s.render import CHECKSUM_ANNOTATION

    template = workload_of(objects)["spec"]["template"]
    if CHECKSUM_ANNOTATION in (template.get("metadata", {}).get("annotations") or {}):
        return None
    kept = (((live or {}).get("spec") or {}).get("template", {}).get("metadata", {})
            .get("annotations") or {}).get(CHECKSUM_ANNOTATION)
    if not isinstance(kept, str):
        return None
    template.setdefault("metadata", {}).setdefault("annotations", {})[CHECKSUM_ANNOTATION] = kept
    return kept


def kept_line(kept: str) -> str:
    from zuul_k8s.render import CHECKSUM_ANNOTATION

    return (f"no --zuul-conf given: keeping the zuul.conf checksum the cluster has "
            f"({CHECKSUM_ANNOTATION}={kept[:12]}...), so the executors do not roll; pass "
            "--zuul-conf FILE to update it")

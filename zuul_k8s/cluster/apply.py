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


def apply_one(cluster: Cluster, obj: dict[str, Any], *, force: bool = False,
              dry_run: bool = False) -> Applied:
    path = object_path(obj)
    try:
        before = cluster.get(path)
        after = cluster.request(
            "PATCH", path,
            {"fieldManager": FIELD_MANAGER, "force": "true" if force else None,
             "dryRun": "All" if dry_run else None},
            obj, APPLY_PATCH)
    except ApiError as err:
        raise explain(err, cluster.server, ref(obj)) from None
    return Applied(ref(obj), _action(before, after, dry_run), after)


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
            result = apply_one(cluster, obj, force=force, dry_run=dry_run)
            if dry_run and obj["kind"] == "Namespace" and result.action == "created":
                missing_namespaces.add(obj["metadata"]["name"])
        report(result)
        done.append(result)
    return done

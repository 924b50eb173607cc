"""The loopback API server: REST paths, verbs, content types and Status
objects as kube-apiserver answers them, over an in-memory store.

Enough for the real `kubernetes` client and the kit: GET/LIST (label and
field selectors), watch streams, POST, PATCH (server-side apply with field
managers and 409 conflicts, merge patch), DELETE (graceful for pods,
dependents by ownerReferences), dryRun, /version, discovery, pod logs,
SelfSubjectAccessReview, 401/403/404/409/422. `controller.py` plays the
controllers and the kubelet. Hooks (attributes of `ApiServer`) inject the
failures a test needs.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.kubeapi import ssa
from zuul_k8s.cluster.resources import RESOURCES

TOKEN = "zuul-k8s-test-token"
BY_PLURAL = {(r.group, r.plural): (kind, r) for kind, r in RESOURCES.items()}
VERB_OF = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
SERVER_VERSION = {"major": "1", "minor": "35", "gitVersion": "v1.35.0", "platform": "linux/amd64"}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.body = code, status(code, reason, message, details)


@dataclass
class Route:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def kind(self) -> str:
        return BY_PLURAL[(self.group, self.plural)][0]

    @property
    def resource_text(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def parse_route(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or (group, rest[0]) not in BY_PLURAL:
        if rest and rest[0] == "namespaces" and len(rest) <= 2:  # the namespaces themselves
            return Route(group, version, "namespaces", None, rest[1] if len(rest) > 1 else None, None)
        return None
    return Route(group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None,
                 rest[2] if len(rest) > 2 else None)


def _without_times(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta["managedFields"] = [{k: v for k, v in m.items() if k != "time"}
                             for m in meta.get("managedFields") or []]
    return {**obj, "metadata": meta}


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in _split_terms(selector))):
        if " in " in term or " notin " in term:
            negate = " notin " in term
            key, values = term.split(" notin " if negate else " in ", 1)
            options = {v.strip() for v in values.strip().strip("()").split(",")}
            if (labels.get(key.strip()) in options) == negate:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [*terms, current]


def _field_matches(selector: str, obj: dict[str, Any]) -> bool:
    for term in filter(None, selector.split(",")):
        negate = "!=" in term
        key, value = term.split("!=" if negate else "=", 1)
        node: Any = obj
        for part in key.lstrip("=").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if (str(node if node is not None else "") == value) == negate:
            return False
    return True


@dataclass
class ApiServer:
    """The store and the failure hooks; `serve()` starts it on 127.0.0.1."""

    # (verb, plural): seconds to hold the answer after the request took effect (a slow
    # network or server: the client is still waiting while the object already exists)
    slow: dict[tuple[str, str], float] = field(default_factory=dict)
    # how many of the next watches from a resourceVersion answer 410 Gone (an ERROR event
    # with a Status, as kube-apiserver does once etcd compacted that history)
    expire_watches: int = 0
    nodes_ready_delay: float = 0.2  # seconds until a started pod is Ready
    drain_seconds: float = 0.6  # how long a terminating pod takes (capped by its grace period)
    version: dict[str, str] = field(default_factory=lambda: dict(SERVER_VERSION))

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.rv = 100
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, type, kind, obj)
        self.logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.httpd: ThreadingHTTPServer | None = None

    # --- store -------------------------------------------------------------------------

    @staticmethod
    def key(kind: str, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return (kind, namespace or "", name, "")

    def find(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get(self.key(kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, kind: str, namespace: str | None = None, labels: str = "",
             fields: str = "") -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for (k, ns, _, _), obj in sorted(self.objects.items()):
                if k != kind or (namespace and ns != namespace):
                    continue
                if labels and not _selector_matches(labels, obj["metadata"].get("labels") or {}):
                    continue
                if fields and not _field_matches(fields, obj):
                    continue
                out.append(copy.deepcopy(obj))
            return out

    def _record(self, event: str, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((self.rv, event, kind, copy.deepcopy(obj)))
        self.changed.notify_all()

    def store(self, kind: str, obj: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
        """Write `obj` (a new resourceVersion; a new generation when its spec changed)."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            key = self.key(kind, meta.get("namespace"), meta["name"])
            old = self.objects.get(key)
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            if old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now())
                meta["generation"] = 1
            else:
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                generation = old["metadata"].get("generation", 1)
                meta["generation"] = generation + (old.get("spec") != obj.get("spec"))
            self.objects[key] = copy.deepcopy(obj)
            self._record("ADDED" if old is None else "MODIFIED", kind, obj)
            return copy.deepcopy(obj)

    def drop(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.pop(self.key(kind, namespace, name), None)
            if obj is not None:
                self.rv += 1
                obj["metadata"]["resourceVersion"] = str(self.rv)
                self._record("DELETED", kind, obj)
                if kind == "Namespace":  # its objects go with it (at once, not in phases)
                    for (k, ns, n, _) in [key for key in self.objects if key[1] == name]:
                        self.drop(k, ns, n)
                for dep_kind in ("Pod", "ReplicaSet"):  # background propagation
                    for child in self.list(dep_kind, namespace):
                        owners = child["metadata"].get("ownerReferences") or []
                        if any(o.get("uid") == obj["metadata"]["uid"] for o in owners):
                            self.delete(dep_kind, namespace, child["metadata"]["name"])
            return obj

    def delete(self, kind: str, namespace: str | None, name: str,
               grace: int | None = None) -> dict[str, Any] | None:
        """Pods terminate gracefully (deletionTimestamp); everything else goes at once."""
        with self.lock:
            obj = self.find(kind, namespace, name)
            if obj is None:
                return None
            if kind == "Pod" and obj["status"].get("phase") in ("Running", "Pending") and grace != 0:
                if "deletionTimestamp" not in obj["metadata"]:
                    period = obj["spec"].get("terminationGracePeriodSeconds", 30)
                    obj["metadata"]["deletionTimestamp"] = now()
                    obj["metadata"]["deletionGracePeriodSeconds"] = period if grace is None else grace
                    return self.store(kind, obj)
                return obj
            return self.drop(kind, namespace, name)

    def event(self, involved: dict[str, Any], kind: str, reason: str, message: str,
              type_: str = "Warning") -> None:
        meta = involved["metadata"]
        name = f"{meta['name']}.{reason.lower()}"
        existing = self.find("Event", meta.get("namespace"), name)
        self.store("Event", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta.get("namespace")},
            "involvedObject": {"kind": kind, "name": meta["name"], "namespace": meta.get("namespace"),
                               "uid": meta.get("uid")},
            "reason": reason, "message": message, "type": type_,
            "count": (existing or {}).get("count", 0) + 1, "lastTimestamp": now(),
        })

    # --- admission ---------------------------------------------------------------------

    def validate(self, kind: str, obj: dict[str, Any]) -> None:
        """API validation: the OpenAPI schema of the served version, plus the cross-field
        rule the kit depends on (procMount Unmasked needs hostUsers false)."""
        from zuul_k8s.validate import openapi
        from zuul_k8s.workloads import pod_template

        causes = [{"reason": "FieldValueInvalid", "message": f.message, "field": f.path}
                  for f in openapi.findings([obj], int(self.version["minor"]))
                  if f.severity.value == "error"]
        template = pod_template(obj)
        if template is not None and template.spec.get("hostUsers", True) is not False:
            for index, container in enumerate(template.spec.get("containers") or []):
                if (container.get("securityContext") or {}).get("procMount") == "Unmasked":
                    prefix = ".".join(template.path)
                    causes.append({
                        "reason": "FieldValueInvalid",
                        "message": "Invalid value: \"Unmasked\": `hostUsers` must be false to use "
                                   "`Unmasked`",
                        "field": f"{prefix + '.' if prefix else ''}spec.containers[{index}]"
                                 ".securityContext.procMount"})
        if causes:
            name = obj["metadata"].get("name")
            raise HttpError(422, "Invalid", f'{kind} "{name}" is invalid: ' + "; ".join(
                f"{c['field']}: {c['message']}" for c in causes),
                {"name": name, "kind": RESOURCES[kind].plural, "causes": causes})

    def admit_pod(self, pod: dict[str, Any]) -> None:
        """Pod Security Admission, as the namespace's enforce labels say."""
        from zuul_k8s.podsecurity import evaluate_pod

        ns = self.find("Namespace", None, pod["metadata"]["namespace"]) or {"metadata": {}}
        labels = ns["metadata"].get("labels") or {}
        level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
        version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
        verdict = evaluate_pod(pod.get("metadata"), pod.get("spec"), level, version)
        if not verdict.allowed:
            raise HttpError(403, "Forbidden", f'pods "{pod["metadata"]["name"]}" is forbidden: '
                            f'violates PodSecurity "{level}:{version}": {verdict.message()}')

    # --- HTTP --------------------------------------------------------------------------

    def serve(self) -> str:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def shutdown(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def kubeconfig(self, url: str, token: str = TOKEN) -> str:
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": {"server": url}}],
            "users": [{"name": "ci", "user": {"token": token}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "ci"}}],
        })

    def handle(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any, str]:
        """(status, body, content type); body is a dict, str, or an iterator for watches."""
        answer = self._handle(method, url, headers, body)
        route = parse_route(urlsplit(url).path) if self.slow else None
        delay = self.slow.get((VERB_OF.get(method, "get"), route.plural)) if route else None
        if delay:
            import time

            time.sleep(delay)
        return answer

    def _handle(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any, str]:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append((method, parts.path, headers.get("Content-Type", "")))
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            raise HttpError(401, "Unauthorized", "Unauthorized")
        if parts.path == "/version":
            return 200, self.version, "application/json"
        if parts.path in ("/api", "/apis"):
            return 200, self.discovery(parts.path), "application/json"
        route = parse_route(parts.path)
        if route is None:
            raise HttpError(404, "NotFound", "the server could not find the requested resource")
        kind = route.kind
        if kind == "SelfSubjectAccessReview" and method == "POST":
            return 201, self.access_review(json.loads(body)), "application/json"
        watching = query.get("watch") in ("true", "1")
        if method == "GET" and route.subresource == "log":
            return 200, self.pod_log(route), "text/plain"
        if method == "GET" and watching:
            return 200, self.watch(kind, route, query), "application/json"
        if method == "GET" and route.name:
            obj = self.find(kind, route.namespace, route.name)
            if obj is None:
                raise self.not_found(route)
            return 200, obj, "application/json"
        if method == "GET":
            items = self.list(kind, route.namespace, query.get("labelSelector", ""),
                              query.get("fieldSelector", ""))
            return 200, {"apiVersion": RESOURCES[kind].api_version, "kind": f"{kind}List",
                         "metadata": {"resourceVersion": str(self.rv)}, "items": items}, \
                "application/json"
        dry_run = query.get("dryRun") == "All"
        if method == "POST":
            return 201, self.create(kind, route, json.loads(body), query, dry_run), "application/json"
        if method == "PATCH":
            return 200, self.patch(kind, route, headers.get("Content-Type", ""), body, query,
                                   dry_run), "application/json"
        if method == "DELETE":
            options = json.loads(body) if body else {}
            grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
            obj = self.find(kind, route.namespace, route.name or "")
            if obj is None:
                raise self.not_found(route)
            if not dry_run:
                obj = self.delete(kind, route.namespace, route.name or "",
                                  None if grace is None else int(grace)) or obj
            return 200, obj, "application/json"
        raise HttpError(405, "MethodNotAllowed", f"{method} is not supported")

    def not_found(self, route: Route) -> HttpError:
        return HttpError(404, "NotFound", f'{route.resource_text} "{route.name}" not found',
                         {"name": route.name, "group": route.group, "kind": route.plural})

    def discovery(self, path: str) -> dict[str, Any]:
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        groups = sorted({r.group for r in RESOURCES.values() if r.group})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]}

    def access_review(self, review: dict[str, Any]) -> dict[str, Any]:
        attrs = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = attrs.get("resource", "")
        if attrs.get("subresource"):
            resource += "/" + attrs["subresource"]
        review["status"] = {"allowed": True}  # denials are tested against real RBAC
        return review

    def _namespace_exists(self, route: Route) -> None:
        if route.namespace and self.find("Namespace", None, route.namespace) is None:
            raise HttpError(404, "NotFound", f'namespaces "{route.namespace}" not found',
                            {"name": route.namespace, "kind": "namespaces"})

    def create(self, kind: str, route: Route, obj: dict[str, Any], query: dict[str, str],
               dry_run: bool) -> dict[str, Any]:
        self._namespace_exists(route)
        meta = obj.setdefault("metadata", {})
        if route.namespace:
            meta["namespace"] = route.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if self.find(kind, route.namespace, meta.get("name", "")) is not None:
            raise HttpError(409, "AlreadyExists",
                            f'{route.resource_text} "{meta["name"]}" already exists',
                            {"name": meta["name"], "kind": route.plural})
        if kind == "Pod":
            self.admit_pod(obj)
        if kind not in ("Event",):
            self.validate(kind, obj)
        ssa.update(None, obj, query.get("fieldManager", "unknown"), obj, now())
        if kind == "Pod":
            obj.setdefault("status", {"phase": "Pending"})
        return obj if dry_run else self.store(kind, obj, created=True)

    def patch(self, kind: str, route: Route, content_type: str, body: bytes,
              query: dict[str, str], dry_run: bool) -> dict[str, Any]:
        current = self.find(kind, route.namespace, route.name or "")
        content_type = content_type.split(";")[0].strip()
        if content_type == "application/apply-patch+yaml":
            applied = yaml.safe_load(body)
            manager = query.get("fieldManager")
            if not manager:
                raise HttpError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                                "fieldManager: Required value: is required for apply patch")
            if current is None:
                self._namespace_exists(route)
            try:
                result = ssa.apply(current, applied, manager, query.get("force") == "true", now())
            except ssa.Conflict as exc:
                causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                           "field": ssa.dotted(p)} for m, p in exc.conflicts]
                text = "; ".join(f'conflict with "{m}": {ssa.dotted(p)}' for m, p in exc.conflicts)
                raise HttpError(409, "Conflict", f"Apply failed with {len(causes)} conflict"
                                f"{'s' if len(causes) != 1 else ''}: {text}", {"causes": causes}) \
                    from None
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if current is None:
                raise self.not_found(route)
            change = json.loads(body)
            result = ssa.merge_patch(current, change)
            ssa.update(current, result, query.get("fieldManager", "unknown"), change, now())
        else:
            raise HttpError(415, "UnsupportedMediaType",
                            f"the body of the request was in an unknown format - accepted media "
                            f"types include: application/json-patch+json, application/merge-patch"
                            f"+json, application/apply-patch+yaml; got {content_type!r}")
        if current is not None and "status" in current:
            result["status"] = current["status"]
        self.validate(kind, result)
        if current is not None and _without_times(result) == _without_times(current):
            return current  # a no-op write: the real server stores nothing, keeps resourceVersion
        if dry_run:
            return result
        return self.store(kind, result, created=current is None)

    def pod_log(self, route: Route) -> str:
        pod = self.find("Pod", route.namespace, route.name or "")
        if pod is None:
            raise self.not_found(route)
        key = (route.namespace or "", route.name or "")
        if key not in self.logs:
            container = pod["spec"]["containers"][0]["name"]
            raise HttpError(400, "BadRequest", f'container "{container}" in pod "{route.name}" is '
                            "waiting to start: ContainerCreating")
        return self.logs[key]

    def watch(self, kind: str, route: Route, query: dict[str, str]) -> Any:
        timeout = float(query.get("timeoutSeconds", 30))
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        since = int(query.get("resourceVersion") or 0)
        with self.lock:
            expired = bool(since) and self.expire_watches > 0
            self.expire_watches -= expired
        if expired:
            gone = status(410, "Expired", f"too old resource version: {since} ({self.rv})")
            return iter([{"type": "ERROR", "object": gone}])

        def matches(obj: dict[str, Any]) -> bool:
            if route.namespace and obj["metadata"].get("namespace") != route.namespace:
                return False
            if labels and not _selector_matches(labels, obj["metadata"].get("labels") or {}):
                return False
            return not fields or _field_matches(fields, obj)

        def stream() -> Any:
            import time

            deadline = time.monotonic() + timeout
            with self.lock:
                if since:
                    cursor = since
                else:  # no resourceVersion: the current state as ADDED events first
                    cursor = self.rv
                    initial = [o for o in self.list(kind, route.namespace) if matches(o)]
            if not since:
                for obj in initial:
                    yield {"type": "ADDED", "object": obj}
            while time.monotonic() < deadline:
                with self.lock:
                    fresh = [(rv, t, o) for rv, t, k, o in self.events if rv > cursor and k == kind]
                    if not fresh:
                        self.changed.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        continue
                    cursor = fresh[-1][0]
                for _, event_type, obj in fresh:
                    if matches(obj):
                        yield {"type": event_type, "object": obj}
        return stream()


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                code, payload, ctype = api.handle(self.command, self.path, self.headers, body)
            except HttpError as exc:
                code, payload, ctype = exc.code, exc.body, "application/json"
            if isinstance(payload, (dict, str)):
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in payload:
                    line = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _do

    return Handler

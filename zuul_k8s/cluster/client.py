"""One connection to the Kubernetes API, and the one place API failures become
messages a user can act on.

Requests go through the `kubernetes` client's ApiClient (auth, TLS, proxies
from the kubeconfig) but with plain dicts in and out: the kit's objects are
dicts from `render`, and the typed models would only get in the way of
server-side apply.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from zuul_k8s.errors import Problem, UserError

FIELD_MANAGER = "zuul-k8s"
JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


@dataclass
class ApiError(Exception):
    """A non-2xx answer, with the server's Status object taken apart."""

    status: int
    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.status} {self.message}"

    @property
    def message(self) -> str:
        return str(self.body.get("message") or self.body.get("reason") or "")

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.body.get("details") or {}).get("causes") or [])

    @property
    def verb(self) -> str:
        if self.method == "GET":
            if str(self.query.get("watch", "")).lower() == "true":
                return "watch"
            return "get" if _split(self.path)["name"] else "list"
        return VERBS.get(self.method, self.method.lower())


def _split(path: str) -> dict[str, str]:
    """/apis/apps/v1/namespaces/zuul/deployments/x -> group, resource, namespace, name."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    else:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[3:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    return {"group": group, "resource": resource, "namespace": namespace, "name": name}


def _resource_text(parts: dict[str, str]) -> str:
    res = parts["resource"]
    return f"{res}.{parts['group']}" if parts["group"] else res


# A 403 is not always RBAC: admission plugins answer 403 too, each with its own words
# (kube-apiserver: the NamespaceLifecycle plugin "because it is being terminated", the
# ResourceQuota plugin "exceeded quota", a validating webhook 'admission webhook "NAME"
# denied the request', PodSecurity "violates PodSecurity").
FORBIDDEN_BY_ADMISSION: tuple[tuple[str, str], ...] = (
    ("being terminated", "the namespace is being deleted; fix: wait until it is gone (or pick "
     "another namespace.name), then rerun"),
    ("exceeded quota", "a ResourceQuota in the namespace refuses it; fix: raise the quota, or "
     "lower resources in the config"),
    ("admission webhook", "an admission webhook refuses it; fix: read its reason above, the "
     "cluster's admins own that policy"),
    ("violates PodSecurity", "the namespace's Pod Security admission refuses it; fix: see "
     "`zuul-k8s preflight` (it reads the namespace's labels) and `zuul-k8s validate`"),
)


def _forbidden(err: ApiError, server: str) -> str:
    for words, why in FORBIDDEN_BY_ADMISSION:
        if words in err.message:
            return f"forbidden: {err.message}: {why}"
    parts = _split(err.path)
    where = f" in namespace {parts['namespace']}" if parts["namespace"] else " (cluster-wide)"
    resource = parts["resource"].split("/")[0]
    # The verb RBAC denied, as the server names it: a server-side apply PATCH that would
    # create the object is denied `create` (kube-apiserver's RBAC message: 'User "u"
    # cannot create resource "r" ...').
    denied = re.search(r" cannot (\w+) resource ", err.message)
    verb = denied.group(1) if denied else err.verb
    return (
        f"forbidden: the cluster refuses `{verb}` on {_resource_text(parts)}{where} "
        f"({err.message}); fix: grant the kit's user a "
        f"{'Role' if parts['namespace'] else 'ClusterRole'} rule "
        f"{{apiGroups: [\"{parts['group']}\"], resources: [\"{resource}\"], verbs: [\"{verb}\"]}} "
        "and bind it; `zuul-k8s preflight` lists every permission the kit needs"
    )


def _unauthorized(err: ApiError, server: str) -> str:
    return (f"the cluster at {server} did not accept the credentials ({err.message or '401'}); "
            "fix: refresh the kubeconfig's token or certificate, or pick another --kubeconfig")


def _conflict(err: ApiError, server: str) -> str:
    managers: dict[str, list[str]] = {}
    for cause in err.causes:
        text = str(cause.get("message", ""))
        manager = text.split('"')[1] if text.count('"') >= 2 else text
        managers.setdefault(manager, []).append(str(cause.get("field", "")))
    if not managers:  # an optimistic-lock conflict, not a field-manager one
        return f"conflict: {err.message}; fix: rerun, the object changed meanwhile"
    owners = "; ".join(f'field manager "{m}" owns {", ".join(f)}' for m, f in managers.items())
    return (f"conflict: {owners}, with values that differ from the config; fix: change the "
            "config to match, or rerun with --force-conflicts to take those fields over")


# 422s whose fix is not "correct the field": the object exists and that field cannot change
# (kubernetes pkg/apis/apps/validation: a StatefulSet's spec is immutable but for a few fields).
IMMUTABLE: tuple[tuple[str, str], ...] = (
    ("updates to statefulset spec for fields other than",
     "a StatefulSet's volumeClaimTemplates, selector and serviceName cannot change once created; "
     "fix: keep state.size and state.storageClassName as they were, or replace the StatefulSet without "
     "dropping builds: `zuul-executor graceful` on each pod, `kubectl delete statefulset NAME "
     "--cascade=orphan`, `zuul-k8s apply`, then delete the orphaned pods one by one (their PVCs "
     "stay)"),
)


def _invalid(err: ApiError, server: str) -> str:
    for words, why in IMMUTABLE:
        if words in err.message:
            return f"the cluster refused the change: {why}"
    fields = [f"{c.get('field', '?')}: {c.get('message', c.get('reason', ''))}" for c in err.causes]
    detail = "; ".join(fields) if fields else err.message
    return (f"the cluster rejected the object: {detail}; fix: correct those fields "
            "(`zuul-k8s validate` checks them offline against the target version's schema)")


def _not_found(err: ApiError, server: str) -> str:
    parts = _split(err.path)
    what = f"{_resource_text(parts)} {parts['name']}".strip()
    where = f" in namespace {parts['namespace']}" if parts["namespace"] else ""
    return f"not found: {what}{where}; fix: create it first, or check the config's names"


def _other(err: ApiError, server: str) -> str:
    return f"the cluster answered {err.status}: {err.message}"


# HTTP status -> how to explain it (the Status object the API server sends).
EXPLAIN: dict[int, Callable[[ApiError, str], str]] = {
    401: _unauthorized,
    403: _forbidden,
    404: _not_found,
    409: _conflict,
    422: _invalid,
}


def explain(err: ApiError, server: str, what: str = "") -> UserError:
    text = EXPLAIN.get(err.status, _other)(err, server)
    return UserError(Problem(what or f"{err.method} {err.path}", "", text))


def unreachable(server: str, reason: object) -> UserError:
    return UserError(Problem(
        server, "", f"cannot reach the Kubernetes API ({reason}); fix: check the kubeconfig's "
        "server URL, the network and that the API server runs (`kubectl cluster-info`)"))


def warning_texts(header: str) -> list[str]:
    """The texts of a `Warning` header (RFC 7234 5.5: `299 - "text"`, comma-separated,
    with backslash escapes inside the quotes), as the API server sends them."""
    texts, i = [], 0
    while (start := header.find('"', i)) != -1:
        j, out = start + 1, []
        while j < len(header) and header[j] != '"':
            if header[j] == "\\" and j + 1 < len(header):
                j += 1
            out.append(header[j])
            j += 1
        texts.append("".join(out))
        i = j + 1
    return texts


def kubeconfig_path(explicit: str | None) -> str | None:
    """--kubeconfig, else $KUBECONFIG (first entry), else ~/.kube/config, else None (in-cluster)."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), None)
    if first:
        return first
    home = Path.home() / ".kube" / "config"
    return str(home) if home.exists() else None


class Cluster:
    """Requests as dicts; every failure raised as ApiError or UserError."""

    def __init__(self, api_client: Any, source: str) -> None:
        self.api = api_client
        self.source = source  # the kubeconfig (or "in-cluster"), for messages
        # The server's own `Warning` headers (e.g. "would violate PodSecurity ..."), in
        # order, without repeats: the CLI shows them, since they are often the first word
        # of a denial the controllers meet later.
        self.warnings: list[str] = []

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Cluster:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = kubeconfig_path(kubeconfig)
        try:
            if path is None:
                if not os.environ.get("KUBERNETES_SERVICE_HOST"):
                    raise UserError(Problem("--kubeconfig", "", "no kubeconfig: pass --kubeconfig "
                                            "FILE or set KUBECONFIG (not running inside a cluster)"))
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                return cls(client.ApiClient(configuration), "in-cluster")
            if not Path(path).is_file():
                raise UserError(Problem(path, "", "kubeconfig not found; fix: pass --kubeconfig "
                                        "FILE or set KUBECONFIG"))
            configuration = client.Configuration()
            config.load_kube_config(config_file=path, client_configuration=configuration)
            configuration.retries = 1  # an unreachable server fails fast, with one message
            return cls(client.ApiClient(configuration), path)
        except ConfigException as exc:
            raise UserError(Problem(path or "in-cluster", "", f"unusable kubeconfig: {exc}")) from None

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any,
              content_type: str | None, timeout: float | tuple[float, float] | None) -> Any:
        import urllib3

        query = {k: v for k, v in (query or {}).items() if v is not None}
        url_path = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type or JSON
        _, url, headers, body, _ = self.api.param_serialize(
            method, url_path, header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            return self.api.call_api(method, url, header_params=headers, body=body,
                                     _request_timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise unreachable(self.server, reason) from None

    def request(self, method: str, path: str, query: dict[str, Any] | None = None,
                body: Any = None, content_type: str | None = None,
                timeout: float = 30) -> dict[str, Any]:
        response = self._send(method, path, query, body, content_type, timeout)
        self._keep_warnings(response)
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"message": data.decode(errors="replace")[:500]}
        if response.status >= 400:
            raise ApiError(response.status, method, path, query or {},
                           parsed if isinstance(parsed, dict) else {})
        return parsed if isinstance(parsed, dict) else {"items": parsed}

    def _keep_warnings(self, response: Any) -> None:
        headers = getattr(response, "headers", None)
        values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
        for value in values:
            for text in warning_texts(value):
                if text not in self.warnings:
                    self.warnings.append(text)

    def get(self, path: str, **query: Any) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, query)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def text(self, path: str, **query: Any) -> str:
        """A plain-text endpoint, e.g. a pod's log."""
        response = self._send("GET", path, query, None, None, 60)
        data = response.read()
        if response.status >= 400:
            try:
                body = json.loads(data)
            except ValueError:
                body = {"message": data.decode(errors="replace")[:500]}
            raise ApiError(response.status, "GET", path, query, body)
        return str(data.decode(errors="replace"))

    def watch(self, path: str, timeout_seconds: int = 5, **query: Any) -> Iterator[dict[str, Any]]:
        """Watch events ({type, object}) until the server ends the stream."""
        query = {**query, "watch": "true", "timeoutSeconds": timeout_seconds}
        response = self._send("GET", path, query, None, None, (10, timeout_seconds + 10))
        if response.status >= 400:
            data = response.read()
            raise ApiError(response.status, "GET", path, query, json.loads(data or b"{}"))
        raw = response.response
        buffer = b""
        try:
            for chunk in raw.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            raw.release_conn()

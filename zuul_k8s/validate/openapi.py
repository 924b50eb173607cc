"""Objects against the strict OpenAPI schema of the target Kubernetes version.

Uses the schemas that kubernetes-validate ships (1.25-1.37, offline) but its
own validator loop, because kubernetes-validate stops at the first error and
users want every error with its path at once. Wrong shapes (a list where a
mapping belongs) are schema errors like any other, never a crash.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from referencing import Registry, Resource

from zuul_k8s.errors import dotted
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.schema_errors import EcmaValidator, non_string_keys, short_message, shown, yaml_key
from zuul_k8s.workloads import object_name

SCHEMA_PACKAGE = "kubernetes_validate"
SCHEMA_ROOT = "kubernetes-json-schema"
SOURCE = "openapi"


def _schema_dir(minor: int) -> Any:
    return resources.files(SCHEMA_PACKAGE) / SCHEMA_ROOT / f"v1.{minor}.0-local-strict"


def supported_minors() -> list[int]:
    root = resources.files(SCHEMA_PACKAGE) / SCHEMA_ROOT
    found = {
        int(m.group(1))
        for entry in root.iterdir()
        if (m := re.fullmatch(r"v1\.(\d+)\.0-local-strict", entry.name))
    }
    return sorted(found)


@cache
def _definitions_json(minor: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_schema_dir(minor) / "_definitions.json").read_text(encoding="utf-8"))
    return data


@cache
def _definitions(minor: int) -> Resource[Any]:
    return Resource.from_contents(_definitions_json(minor))


@cache
def served(minor: int) -> tuple[frozenset[tuple[str, str, str]], frozenset[str]]:
    """(group, version, kind) the API server of that version serves, and its built-in API groups.

    From the definitions' x-kubernetes-group-version-kind; the groups include
    ones whose kinds were all removed (extensions), as DeleteOptions lists them.
    """
    kinds = set()
    groups = set()
    for definition in _definitions_json(minor).get("$defs", {}).values():
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            groups.add(gvk["group"])
            if gvk["kind"] not in ("DeleteOptions", "WatchEvent", "Status", "APIGroup", "APIVersions"):
                kinds.add((gvk["group"], gvk["version"], gvk["kind"]))
    return frozenset(kinds), frozenset(groups)


def _split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _schema_file(kind: str, api_version: str) -> str:
    # kubernetes-validate's naming: `rbac.authorization.k8s.io/v1` -> `rbac-v1`.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@cache
def _validator(minor: int, kind: str, api_version: str) -> Any:
    path = _schema_dir(minor) / _schema_file(kind, api_version)
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(minor) @ registry
    return EcmaValidator(schema, registry=registry)


def _explain(error: Any) -> list[tuple[list[str | int], str]]:
    """(path, message) pairs; an unknown-field error names each unknown field."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [([*path, str(key)], "unknown field") for key in error.instance if key not in known]
    if error.validator == "enum":
        return [(path, f"{shown(error.instance)} is not one of {error.validator_value}")]
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return [(path, f"expected {wanted}, got {type(error.instance).__name__} "
                       f"{shown(error.instance)}")]
    return [(path, short_message(error))]


def _key_findings(kind: str, name: str, obj: dict[str, Any]) -> list[Finding]:
    """JSON has only string keys: YAML's `1:` or `null:` cannot reach the API server as written."""
    out = []
    for path, key in non_string_keys(obj):
        text, key_type = yaml_key(key)
        out.append(Finding(Severity.ERROR, SOURCE, "key", kind, name, dotted(path) or "(top)",
                           f"key {text} ({key_type}) is not a string: JSON, which the API "
                           "server reads, has only string keys", f"quote the key: \"{text}\""))
    return out


def _unserved(obj_kind: str, name: str, api_version: str, minor: int) -> Finding:
    """A built-in group's apiVersion/kind this version does not serve: an error, with what it does serve."""
    kinds, _ = served(minor)
    alternatives = sorted(f"{g}/{v}" if g else v for g, v, k in kinds if k == obj_kind)
    if alternatives:
        fix = f"use {' or '.join(alternatives)}"
    else:
        fix = f"check the kind: no API group of Kubernetes 1.{minor} serves {obj_kind}"
    return Finding(Severity.ERROR, SOURCE, "unserved", obj_kind, name, "apiVersion",
                   f"Kubernetes 1.{minor} does not serve {api_version} {obj_kind}"
                   f" (removed, not yet added, or misspelt)", fix)


def findings(objects: list[dict[str, Any]], minor: int) -> list[Finding]:
    out = []
    kinds, groups = served(minor)
    for obj in objects:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        name = object_name(obj)
        if not isinstance(kind, str) or not isinstance(api_version, str):
            out.append(Finding(Severity.ERROR, SOURCE, "object", str(kind), name, "(top)",
                               "not a Kubernetes object: needs string `apiVersion` and `kind`",
                               "add apiVersion and kind"))
            continue
        keys = _key_findings(kind, name, obj)
        if keys:
            out += keys
            continue
        group, version = _split(api_version)
        if (group, version, kind) not in kinds:
            if group in groups:
                out.append(_unserved(kind, name, api_version, minor))
            else:
                out.append(Finding(Severity.WARNING, SOURCE, "unknown-kind", kind, name, "(top)",
                                   f"no schema for {api_version} {kind} in Kubernetes 1.{minor}",
                                   "check apiVersion and kind; custom resources are not checked"))
            continue
        validator = _validator(minor, kind, api_version)
        if validator is None:
            out.append(Finding(Severity.WARNING, SOURCE, "unknown-kind", kind, name, "(top)",
                               f"no schema file for {api_version} {kind} in Kubernetes 1.{minor}",
                               "this kind is served but not checked here"))
            continue
        fix = f"make it match the Kubernetes 1.{minor} API ({api_version} {kind})"
        found = [
            Finding(Severity.ERROR, SOURCE, str(error.validator), kind, name,
                    dotted(path) or "(top)", message, fix)
            for error in validator.iter_errors(obj)
            for path, message in _explain(error)
        ]
        out += sorted(found, key=lambda f: f.path)
    return out

"""Objects against the strict OpenAPI schema of the target Kubernetes version.

Uses the schemas that kubernetes-validate ships (1.25-1.37, offline) but its
own validator loop, because kubernetes-validate stops at the first error and
users want every error with its path at once.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from zuul_k8s.errors import dotted
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.schema_errors import shown

SCHEMA_PACKAGE = "kubernetes_validate"
SCHEMA_ROOT = "kubernetes-json-schema"


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
def _definitions(minor: int) -> Resource[Any]:
    text = (_schema_dir(minor) / "_definitions.json").read_text(encoding="utf-8")
    return Resource.from_contents(json.loads(text))


def _schema_file(kind: str, api_version: str) -> str:
    # kubernetes-validate's naming: `rbac.authorization.k8s.io/v1` -> `rbac-v1`.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@cache
def _validator(minor: int, kind: str, api_version: str) -> Draft202012Validator | None:
    path = _schema_dir(minor) / _schema_file(kind, api_version)
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(minor) @ registry
    return Draft202012Validator(schema, registry=registry)


def _explain(error: Any) -> list[tuple[list[str | int], str]]:
    """(path, message) pairs; an unknown-field error names each unknown field."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [([*path, key], "unknown field") for key in error.instance if key not in known]
    if error.validator == "enum":
        return [(path, f"{shown(error.instance)} is not one of {error.validator_value}")]
    return [(path, str(error.message))]


def findings(objects: list[dict[str, Any]], minor: int) -> list[Finding]:
    out = []
    for obj in objects:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        name = str((obj.get("metadata") or {}).get("name") or "(unnamed)")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            out.append(Finding(Severity.ERROR, "openapi", "object", str(kind), name, "(top)",
                               "not a Kubernetes object: needs string `apiVersion` and `kind`",
                               "add apiVersion and kind"))
            continue
        validator = _validator(minor, kind, api_version)
        if validator is None:
            out.append(Finding(Severity.WARNING, "openapi", "unknown-kind", kind, name, "(top)",
                               f"no schema for {api_version} {kind} in Kubernetes 1.{minor}",
                               "check apiVersion and kind; custom resources are not checked"))
            continue
        fix = f"make it match the Kubernetes 1.{minor} API ({api_version} {kind})"
        found = [
            Finding(Severity.ERROR, "openapi", str(error.validator), kind, name,
                    dotted(path) or "(top)", message, fix)
            for error in validator.iter_errors(obj)
            for path, message in _explain(error)
        ]
        out += sorted(found, key=lambda f: f.path)
    return out

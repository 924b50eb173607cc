"""Validation: objects in, findings out, from three independent engines.

- openapi: the strict Kubernetes schema of the target version;
- contract: the kit's isolation contract (zuul_k8s.isolation) and the namespace's labels;
- podsecurity: Pod Security Standards, as the namespace's admission would judge.
"""

from __future__ import annotations

from typing import Any

from zuul_k8s.findings import Finding, Severity
from zuul_k8s.validate import admission, contract, openapi
from zuul_k8s.validate.admission import Target

__all__ = ["Target", "validate"]

_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def validate(objects: list[dict[str, Any]], target: Target) -> list[Finding]:
    found = openapi.findings(objects, target.minor)
    found += contract.findings(objects, target.minor)
    found += admission.namespace_findings(objects, target)
    found += admission.pod_security_findings(objects, target)
    return sorted(found, key=lambda f: _ORDER[f.severity])

"""Validation: objects in, findings out, from three independent engines.

- openapi: the strict Kubernetes schema of the target version;
- contract: the kit's isolation contract (zuul_k8s.isolation) and the namespace's labels;
- podsecurity: Pod Security Standards, as the namespace's admission would judge;
- zuulconf: the zuul.conf given, against the executor pod it runs in (when given).

Every engine reads manifests of any shape. Pod Security is judged only on
objects the target's schema checked and found well-typed: admission never
sees a misshapen or unserved object (the API server refuses it first), so its
verdict would mean nothing; the OpenAPI findings say what to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zuul_k8s.findings import Finding, Severity
from zuul_k8s.validate import admission, contract, openapi, zuulconf
from zuul_k8s.validate.admission import Target
from zuul_k8s.workloads import object_name, pod_template

if TYPE_CHECKING:
    from zuul_k8s.zuulconf import ZuulConf

__all__ = ["Target", "validate"]

_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
SHAPE_RULES = ("type", "object", "key")  # openapi rules that mean a field has the wrong shape
UNCHECKED_RULES = ("unserved", "unknown-kind")  # no schema checked the shapes: admission would not see it


def validate(objects: list[dict[str, Any]], target: Target, zuul_conf: ZuulConf | None = None) -> list[Finding]:
    found: list[Finding] = []
    well_formed = []
    for obj in objects:
        schema = openapi.findings([obj], target.minor)
        found += schema
        misshapen = [f for f in schema if f.rule in SHAPE_RULES]
        if not misshapen and not any(f.rule in UNCHECKED_RULES for f in schema):
            well_formed.append(obj)
        elif misshapen and pod_template(obj) is not None:
            found.append(Finding(Severity.WARNING, "podsecurity", "notEvaluated", str(obj.get("kind")),
                                 object_name(obj), misshapen[0].path,
                                 "Pod Security not evaluated: fields have the wrong type "
                                 "(the API server would refuse the object before admission)",
                                 "fix the openapi errors, then validate again"))
    found += contract.findings(objects, target.minor)
    found += admission.namespace_findings(objects, target)
    found += admission.pod_security_findings(well_formed, target, namespaces=objects)
    if zuul_conf is not None:
        found += zuulconf.findings(zuul_conf, objects)
    return sorted(found, key=lambda f: _ORDER[f.severity])

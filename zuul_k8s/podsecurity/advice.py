"""Pod Security verdicts as findings: what fails, where, and what to change.

This is the seam `zuul-k8s validate` calls. When a newer policy version would
admit the pod (the user-namespace relaxation of v1.35, container_engine_t from
v1.31, newer sysctls), the finding says so, since pinning an older
enforce-version is the usual cause.
"""

from __future__ import annotations

from typing import Any

from zuul_k8s.findings import Finding, Severity
from zuul_k8s.podsecurity.evaluate import field_path, judge, newer_admitting
from zuul_k8s.podsecurity.pod import pod_view
from zuul_k8s.podsecurity.registry import CEILING, fix_text
from zuul_k8s.podsecurity.versions import effective_minor, format_version, parse_level
from zuul_k8s.workloads import pod_template

SOURCE = "podsecurity"
_NEWER_NOTE = "policy {version} admits it"
_NEWER_FIX = (
    "{fix}; or, on Kubernetes {release}+, label the namespace "
    "pod-security.kubernetes.io/enforce-version: {version} (or latest)"
)


def findings(objects: list[Any], level: str, version: str) -> list[Finding]:
    """One error per failing check per pod-making object; objects of other kinds,
    and non-objects (the OpenAPI validator reports those), give none."""
    level = parse_level(level)
    minor = effective_minor(version, CEILING)
    out = []
    for obj in objects:
        template = pod_template(obj) if isinstance(obj, dict) else None
        if template is None:
            continue
        pod = pod_view(template.metadata, template.spec)
        for check, variant, result in judge(pod, level, minor):
            paths = dict.fromkeys(field_path(template.path, f) for f in result.fields)
            message = f'violates PodSecurity "{level}:{version}": {result.reason}'
            if result.detail:
                message += f" ({result.detail})"
            fix = fix_text(check, variant)
            later = newer_admitting(pod, level, check.id, minor)
            if later is not None:
                words = {
                    "version": format_version(later),
                    "release": f"1.{later}",
                    "level": level,
                    "fix": fix,
                }
                note = check.newer_note or _NEWER_NOTE
                message += "; " + note.format(**words)
                fix = (check.newer_fix or _NEWER_FIX).format(**words)
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    source=SOURCE,
                    rule=check.id,
                    kind=template.kind,
                    name=template.name,
                    path=", ".join(paths) or field_path(template.path, ("spec",)),
                    message=message,
                    fix=fix,
                )
            )
    return out

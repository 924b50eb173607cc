"""Would Pod Security Admission admit this pod? The public entry points.

Evaluation is pure: the caller's objects are read, never changed (the API
defaulting of spec 1.1 works on copies), and nothing is looked up elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zuul_k8s.errors import dotted
from zuul_k8s.podsecurity.checks import CheckResult
from zuul_k8s.podsecurity.pod import FieldPath, MapKey, PodView, pod_view
from zuul_k8s.podsecurity.registry import CEILING, Check, Variant, changes_of, selected
from zuul_k8s.podsecurity.versions import effective_minor, format_version, parse_level
from zuul_k8s.workloads import pod_template


@dataclass(frozen=True)
class Denial:
    """One failing check: upstream's reason and detail, and the fields at fault."""

    check: str
    reason: str
    detail: str
    fields: tuple[str, ...]  # dotted paths inside the evaluated object (or pod)

    def __str__(self) -> str:
        reason = self.reason or "unknown forbidden reason"
        return f"{reason} ({self.detail})" if self.detail else reason


@dataclass(frozen=True)
class Verdict:
    level: str
    version: str  # the policy version whose rules ran, e.g. v1.37 for `latest`
    denials: tuple[Denial, ...]

    @property
    def allowed(self) -> bool:
        return not self.denials

    def message(self) -> str:
        """Upstream's combined form: every denial as `reason (detail)`, joined (spec 8.1)."""
        return ", ".join(str(denial) for denial in self.denials)


def field_path(prefix: tuple[str, ...], path: FieldPath) -> str:
    """`spec.template.spec.containers[0].securityContext.procMount`, or `...annotations["k"]`."""
    if path and isinstance(path[-1], MapKey):
        return f'{dotted((*prefix, *path[:-1]))}["{path[-1]}"]'
    return dotted((*prefix, *path))


def judge(pod: PodView, level: str, minor: int) -> list[tuple[Check, Variant, CheckResult]]:
    """Every selected check that denies the pod, in upstream's order (spec 2.5)."""
    failed = []
    for check, variant in selected(level, minor):
        result = variant.run(pod)
        if not result.allowed:
            failed.append((check, variant, result))
    return failed


def newer_admitting(pod: PodView, level: str, check_id: str, minor: int) -> int | None:
    """The first newer policy version at which this check (or the check replacing it)
    admits the pod, if any: what a newer enforce-version would change."""
    for later in changes_of(check_id):
        if later <= minor:
            continue
        judges = [
            variant
            for check, variant in selected(level, later)
            if check.id == check_id or check_id in variant.overrides
        ]
        if judges and all(variant.run(pod).allowed for variant in judges):
            return later
    return None


def _verdict(pod: PodView, level: str, minor: int, prefix: tuple[str, ...]) -> Verdict:
    denials = tuple(
        Denial(
            check=check.id,
            reason=result.reason,
            detail=result.detail,
            fields=tuple(dict.fromkeys(field_path(prefix, f) for f in result.fields)),
        )
        for check, _, result in judge(pod, level, minor)
    )
    return Verdict(level=level, version=format_version(minor), denials=denials)


def evaluate_pod(
    metadata: dict[str, Any] | None, spec: dict[str, Any] | None, level: str, version: str
) -> Verdict:
    """The verdict for a pod (or a pod template's metadata and spec) at a level and
    policy version (`latest` or `v1.N`); raises PolicyError for an unknown one."""
    level = parse_level(level)
    minor = effective_minor(version, CEILING)
    return _verdict(pod_view(metadata, spec), level, minor, ())


def evaluate_object(obj: dict[str, Any], level: str, version: str) -> Verdict | None:
    """The verdict for the pod an object makes (Pod, Deployment, CronJob, ...), with
    field paths from the object's root; None for objects that make no pods."""
    level = parse_level(level)
    minor = effective_minor(version, CEILING)
    template = pod_template(obj)
    if template is None:
        return None
    return _verdict(pod_view(template.metadata, template.spec), level, minor, template.path)

"""Findings: what validation says about an object, and how it is shown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One verdict about one field of one object, with the change that mends it."""

    severity: Severity
    source: str  # the engine that found it: openapi, contract, podsecurity
    rule: str  # the rule's ID inside that engine
    kind: str
    name: str
    path: str  # dotted JSON path inside the object
    message: str
    fix: str = ""
    # A finding about a file (zuul.conf) rather than an object: located as FILE:PATH;
    # kind/name then name the object it was checked against.
    file: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.path}" if self.file else f"{self.kind}/{self.name}: {self.path}"

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["severity"] = self.severity.value
        if not self.file:
            del data["file"]
        return data


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def format_text(findings: list[Finding]) -> str:
    if not findings:
        return "ok: no findings\n"
    lines = []
    for f in findings:
        lines.append(f"{f.severity.value}: {f.location}: {f.message} [{f.source}/{f.rule}]")
        if f.fix:
            lines.append(f"  fix: {f.fix}")
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def format_json(findings: list[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2) + "\n"

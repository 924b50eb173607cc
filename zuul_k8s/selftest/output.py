"""A self-test report and its diagnoses, for people (a table) and for programs (JSON).

Shared by the local runner and the cluster self-test, so both read the same.
"""

from __future__ import annotations

import json
from typing import Any

from zuul_k8s.selftest.diagnosis import Diagnosis
from zuul_k8s.selftest.report import Report

RESULT = {"pass": "pass", "fail": "FAIL", "skip": "skip"}


def _rows(report: Report, diagnoses: list[Diagnosis]) -> list[tuple[str, str, str]]:
    numbers: dict[str, list[int]] = {}
    for number, diagnosis in enumerate(diagnoses, 1):
        for check_id in diagnosis.checks:
            numbers.setdefault(check_id, []).append(number)
    rows = []
    for check in report["checks"]:
        result = RESULT[check["status"]]
        if check["status"] == "fail" and check["id"] in numbers:
            result += " " + ",".join(f"[{n}]" for n in numbers[check["id"]])
        elif check["warning"]:
            result += " (!)"
        rows.append((check["id"], result, check["message"]))
    return rows


def format_table(report: Report, diagnoses: list[Diagnosis]) -> str:
    """Check, result and message per row; then each cause with its fix, numbered."""
    rows = [("CHECK", "RESULT", "DETAIL"), *_rows(report, diagnoses)]
    widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    summary = report["summary"]
    lines.append("")
    lines.append(
        f"{len(report['checks'])} checks: {summary['pass']} pass, {summary['fail']} fail, "
        f"{summary['skip']} skip ({'checker' if report.get('kind') == 'job' else 'probe'} "
        f"{report['durationMs']:.0f} ms)"
    )
    warnings = [c for c in report["checks"] if c["warning"]]
    for check in warnings:
        lines.append(f"(!) {check['id']}: {check['warning']}")
    for number, diagnosis in enumerate(diagnoses, 1):
        lines.append("")
        lines.append(f"[{number}] {diagnosis.rule.title} ({diagnosis.rule.id})")
        lines.append(f"    checks:   {', '.join(diagnosis.checks)}")
        for evidence in diagnosis.evidence:
            lines.append(f"    seen:     {evidence}")
        lines.append(f"    cause:    {diagnosis.cause}")
        lines.append(f"    fix:      {diagnosis.rule.fix}")
    return "\n".join(lines) + "\n"


def as_document(report: Report, diagnoses: list[Diagnosis], **context: Any) -> dict[str, Any]:
    """The JSON output: the report untouched, the diagnoses, and how it was run."""
    return {
        "ok": report["ok"],
        **context,
        "diagnoses": [d.as_dict() for d in diagnoses],
        "report": report,
    }


def format_json(report: Report, diagnoses: list[Diagnosis], **context: Any) -> str:
    return json.dumps(as_document(report, diagnoses, **context), indent=2) + "\n"

"""The probe's report: parsed and checked against schemas/selftest-report.schema.json.

The probe runs in someone else's image, possibly an older or newer probe, so
its output is untrusted input: anything that is not a valid report becomes a
UserError naming where it broke, never a KeyError later in the diagnosis.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from zuul_k8s import schemas
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.schema_errors import to_problems

SCHEMA_NAME = "selftest-report.schema.json"
Report = dict[str, Any]


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schemas.load(SCHEMA_NAME))


def problems(report: Any, source: str) -> list[Problem]:
    """Everything wrong with a parsed report; empty when it is valid."""
    found = to_problems(list(_validator().iter_errors(report)), source)
    if not found:
        ids = [check["id"] for check in report["checks"]]
        found += [
            Problem(source, f"checks[{index}].id", f"check {check_id!r} appears more than once")
            for index, check_id in enumerate(ids)
            if check_id in ids[:index]
        ]
    return found


def validate(report: Any, source: str) -> Report:
    found = problems(report, source)
    if found:
        raise UserError(found)
    result: Report = report
    return result


def parse(text: str | bytes, source: str) -> Report:
    """A validated report from the probe's stdout."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        excerpt = (text.decode(errors="replace") if isinstance(text, bytes) else text)[:200]
        raise UserError(
            Problem(source, "", f"the probe printed no JSON report ({exc}); it printed: {excerpt!r}")
        ) from None
    return validate(data, source)


def parse_log(text: str, source: str) -> Report:
    """A report from a pod's log, where the kubelet interleaves stderr with stdout: the
    probe prints its JSON indented (every inner line starts with a space), so lines that
    are neither `{`, `}` nor indented are another stream's and are left out."""
    try:
        return parse(text, source)
    except UserError:
        kept = "\n".join(line for line in text.splitlines()
                         if line in ("{", "}") or line.startswith(" "))
        try:
            json.loads(kept)
        except ValueError:
            return parse(text, source)  # raises with the original text
        return parse(kept, source)


def failed_checks(report: Report) -> list[dict[str, Any]]:
    return [check for check in report["checks"] if check["status"] == "fail"]

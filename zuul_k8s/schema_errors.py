"""JSON Schema errors as messages a person can act on, located as FILE:PATH."""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError

from zuul_k8s.errors import Problem, dotted

MAX_SHOWN = 60


def shown(value: Any) -> str:
    """A value for a message: quoted, one line, cut short (it may be hostile)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _message(error: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in schema.get("properties", {}))
        key = extra[0] if extra else "?"
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return [*path, str(key)], f"unknown key{hint}"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return path, f"missing required key {missing!r}"
    if kind == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        return path, f"{shown(error.instance)} is not one of: {options}"
    if kind == "type":
        return path, f"expected {error.validator_value}, got {type(error.instance).__name__} {shown(error.instance)}"
    if kind in ("pattern", "not"):
        what = schema.get("description", "")
        return path, f"{shown(error.instance)} is not valid. {what}".rstrip()
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"{shown(error.instance)} is out of range ({kind} {error.validator_value})"
    if kind in ("maxLength", "minLength", "maxItems", "minItems"):
        return path, f"{shown(error.instance)} breaks {kind} {error.validator_value}"
    return path, error.message


def to_problems(errors: list[ValidationError], source: str) -> list[Problem]:
    problems = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path, message = _message(error)
        problems.append(Problem(source, dotted(path) or "(top)", message))
    return problems

"""JSON Schema errors as messages a person can act on, located as FILE:PATH.

Also the validator classes the kit uses: JSON Schema means ECMA-262 regular
expressions and mathematical integers, and Python's `re` and jsonschema's
defaults differ on both in ways that let bad input through (see below).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from zuul_k8s.errors import Problem, dotted

MAX_SHOWN = 60
MAX_MESSAGE = 300


def shown(value: Any) -> str:
    """A value for a message: quoted, one line, cut short (it may be hostile)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def yaml_key(key: Any) -> tuple[str, str]:
    """(how YAML spelt a non-string key, its type) for a message: None was `null`, True `true`."""
    if key is None:
        return "null", "null"
    if isinstance(key, bool):
        return str(key).lower(), "bool"
    return shown(key), type(key).__name__


def non_string_keys(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path of the mapping, key) for every key that is not a string, at any depth.

    YAML reads `1:`, `true:` or `null:` as other types; JSON, which the kit's schemas
    and the API server read, has only string keys.
    """
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(key, str):
                yield from non_string_keys(sub, (*path, key))
            else:
                yield path, key
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from non_string_keys(sub, (*path, index))


def short_message(error: ValidationError) -> str:
    """jsonschema's own message, with the offending value cut short and the whole line capped."""
    text = str(error.message)
    text = text.replace(repr(error.instance), shown(error.instance))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def ecma_pattern(pattern: str) -> str:
    """The pattern with `$` meaning the end of the string, as in ECMA-262.

    Python's `$` also matches before a final newline, so `^[a-z]+$` accepts
    "zuul\\n"; JSON Schema patterns are ECMA-262, where it does not.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[start : start + 1] == "]":  # a leading ']' is literal
                out.append(pattern[i : start + 1])
                i = start + 1
                continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{shown(instance)} does not match {pattern!r}")


def _integer(checker: Any, instance: Any) -> bool:
    """Only ints: jsonschema's default also takes 2.0, which would be rendered as `2.0`."""
    return isinstance(instance, int) and not isinstance(instance, bool)


# Kubernetes manifests: ECMA patterns; integers as Kubernetes reads them (YAML `2.0` becomes JSON 2).
EcmaValidator = validators.extend(Draft202012Validator, validators={"pattern": _pattern})
# The kit's own config: ECMA patterns and integers that are ints.
StrictValidator = validators.extend(
    EcmaValidator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _integer)
)


def _message(error: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in schema.get("properties", {}))
        key = extra[0] if extra else "?"
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return [*path, str(key)], f"unknown key{hint}"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return path, f"missing required key {missing!r}"
    if kind == "enum":
        options = ", ".join("null" if o is None else str(o) for o in error.validator_value)
        why = schema.get("description", "")
        return path, f"{shown(error.instance)} is not one of: {options}" + (f". {why}" if why else "")
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return path, f"expected {wanted}, got {type(error.instance).__name__} {shown(error.instance)}"
    if kind in ("pattern", "not"):
        what = schema.get("description", "")
        return path, f"{shown(error.instance)} is not valid. {what}".rstrip()
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"{shown(error.instance)} is out of range ({kind} {error.validator_value})"
    if kind in ("maxLength", "minLength", "maxItems", "minItems"):
        return path, f"{shown(error.instance)} breaks {kind} {error.validator_value}"
    return path, short_message(error)


def to_problems(errors: list[ValidationError], source: str) -> list[Problem]:
    problems = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path, message = _message(error)
        problems.append(Problem(source, dotted(path) or "(top)", message))
    return problems

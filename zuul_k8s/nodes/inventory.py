"""Checking a YAML inventory before Ansible sees it: its shape, and the kit's variables.

Ansible reports a malformed inventory as a warning and runs against no hosts;
a wrong zuul_k8s_ variable would surface per host, mid-run. Both are cheaper
to catch here, with FILE:PATH messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema

from zuul_k8s import schemas, yamlio
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.nodes import VARS_SCHEMA
from zuul_k8s.schema_errors import to_problems

GROUP_KEYS = ("hosts", "vars", "children")
VAR_PREFIX = "zuul_k8s_"
INI_FIX = (
    "zuul-k8s reads YAML inventories; convert this one with `ansible-inventory -i FILE --list -y > inventory.yaml`"
)


def _templated(value: Any) -> bool:
    """A Jinja value is only known on the controller at run time: the play checks it."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _groups(data: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, group in data.items():
        yield (*path, str(name)), group
        if isinstance(group, dict) and isinstance(group.get("children"), dict):
            yield from _groups(group["children"], (*path, str(name), "children"))


def _mapping_problem(source: str, path: tuple[str, ...], value: Any, what: str) -> Problem | None:
    if value is None or isinstance(value, dict):
        return None
    return Problem(source, ".".join(path), f"{what} must be a mapping, got {type(value).__name__}")


def check_vars(source: str, path: tuple[str, ...], variables: dict[str, Any]) -> list[Problem]:
    """The kit's variables in one vars mapping, against schemas/node-vars.schema.json."""
    ours = {str(k): v for k, v in variables.items() if str(k).startswith(VAR_PREFIX) and not _templated(v)}
    validator = jsonschema.Draft202012Validator(schemas.load(VARS_SCHEMA))
    problems = to_problems(list(validator.iter_errors(ours)), source)
    prefix = ".".join(path)
    return [Problem(p.file, f"{prefix}.{p.path}" if p.path != "(top)" else prefix, p.message) for p in problems]


def check(data: Any, source: str) -> tuple[list[str], list[Problem]]:
    """The host names an inventory defines, and what is wrong with it."""
    if isinstance(data, (list, str)) or data is None:
        what = "empty" if data is None else "not a YAML inventory (a mapping of groups)"
        return [], [Problem(source, "", f"{what}; {INI_FIX}")]
    if not isinstance(data, dict):
        return [], [Problem(source, "", f"not a YAML inventory (a mapping of groups); {INI_FIX}")]
    hosts: list[str] = []
    problems: list[Problem] = []
    for path, group in _groups(data, ()):
        where = ".".join(path)
        if group is None:
            continue
        if not isinstance(group, dict):
            problems.append(Problem(source, where, "a group must be a mapping of hosts, vars, children"))
            continue
        for key in group:
            if key not in GROUP_KEYS:
                problems.append(
                    Problem(
                        source,
                        f"{where}.{key}",
                        f"unknown key; a group holds {', '.join(GROUP_KEYS)}",
                    )
                )
        for key, what in (("hosts", "hosts"), ("vars", "vars"), ("children", "children")):
            bad = _mapping_problem(source, (*path, key), group.get(key), what)
            if bad:
                problems.append(bad)
        if isinstance(group.get("vars"), dict):
            problems += check_vars(source, (*path, "vars"), group["vars"])
        for host, hostvars in (group.get("hosts") or {}).items() if isinstance(group.get("hosts"), dict) else ():
            hosts.append(str(host))
            bad = _mapping_problem(source, (*path, "hosts", str(host)), hostvars, "host variables")
            if bad:
                problems.append(bad)
            elif hostvars:
                problems += check_vars(source, (*path, "hosts", str(host)), hostvars)
    if not problems and not hosts:
        problems.append(Problem(source, "", "defines no hosts; add them under all.hosts or a group's hosts"))
    return sorted(set(hosts)), problems


def load(source: str) -> list[str]:
    """The hosts of a valid inventory file; raises UserError listing every problem."""
    try:
        data = yamlio.load_one(source)
    except UserError as exc:
        if any("not valid YAML" in p.message for p in exc.problems):
            raise UserError([*exc.problems, Problem(source, "", INI_FIX)]) from None
        raise
    hosts, problems = check(data, source)
    if problems:
        raise UserError(problems)
    return hosts

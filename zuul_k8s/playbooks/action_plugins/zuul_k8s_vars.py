"""Ansible action: check a host's zuul_k8s_* variables against the kit's JSON Schema.

Runs on the controller (an action plugin, not a module): the schema and
jsonschema live there, not on the nodes. Returns the variables with the
schema's defaults filled in, so the defaults are written once, in the schema.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_k8s_vars
short_description: Validate the host's zuul_k8s_* variables against a JSON Schema
description:
  - Collects every variable of the host whose name starts with O(prefix), checks
    them against the schema (draft 2020-12; unknown names are refused, most are
    typos), and returns them with the schema's defaults in RV(settings).
  - Runs on the controller and needs the C(jsonschema) Python package there.
options:
  schema:
    description: Path of the JSON Schema on the controller.
    type: path
    required: true
  prefix:
    description: Only variables whose name starts with this are checked.
    type: str
    default: zuul_k8s_
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Validate variables
  zuul_k8s_vars:
    schema: "{{ playbook_dir }}/../schemas/node-vars.schema.json"
  register: kit
"""

RETURN = r"""
settings:
  description: Every variable the schema knows, as set for the host or defaulted.
  type: dict
  returned: success
"""

import json  # noqa: E402
from typing import Any  # noqa: E402

from ansible.plugins.action import ActionBase  # noqa: E402


def where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems(settings: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """One `VARIABLE: message` per schema error, in a stable order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for error in sorted(validator.iter_errors(settings), key=lambda e: list(map(str, e.path))):
        if error.validator == "additionalProperties":
            known = sorted(schema.get("properties", {}))
            for name in sorted(set(error.instance) - set(known)):
                out.append(f"{name}: unknown variable; known: {', '.join(known)}")
            continue
        name = where(error.absolute_path) or "(variables)"
        description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
        value = repr(error.instance)[:60]
        if error.validator == "enum":
            allowed = ", ".join(map(str, error.validator_value))
            out.append(f"{name}: {value} is not one of: {allowed}")
        else:
            out.append(f"{name}: {value} is not valid ({error.message}). {description}".strip())
    return out


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        prefix = args.get("prefix", "zuul_k8s_")
        try:
            with open(args["schema"], encoding="utf-8") as handle:
                schema = json.load(handle)
        except (KeyError, OSError, ValueError) as exc:
            return {**result, "failed": True, "msg": f"cannot read the schema: {exc}"}
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            return {
                **result,
                "failed": True,
                "msg": "the Python package jsonschema is missing on the controller: "
                "pip install jsonschema (zuul-k8s installs it)",
            }
        settings = {
            name: self._templar.template(value)
            for name, value in task_vars.items()
            if isinstance(name, str) and name.startswith(prefix)
        }
        found = problems(settings, schema)
        if found:
            return {
                **result,
                "failed": True,
                "msg": "bad variables: " + "; ".join(found),
                "problems": found,
            }
        for name, spec in schema.get("properties", {}).items():
            if "default" in spec:
                settings.setdefault(name, spec["default"])
        return {**result, "changed": False, "settings": settings}

"""Reading an inventory the way `ansible-playbook -i` does, and checking the kit's variables.

Any inventory Ansible takes works: INI, YAML, a directory with group_vars/ and
host_vars/, an executable inventory script, an inventory plugin's config. Ansible
itself reads it (`ansible-inventory -i SOURCE --list`, the one next to this
interpreter), so what is checked is exactly what the play will see: every host
with its variables merged from all groups and files. Ansible reports an unreadable
inventory as a warning and runs against no hosts, and a wrong zuul_k8s_ variable
would surface per host, mid-run: both are caught here, naming the host and the
variable, before anything runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from zuul_k8s import schemas
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.nodes import VARS_SCHEMA
from zuul_k8s.schema_errors import to_problems

VAR_PREFIX = "zuul_k8s_"
# Ansible settings for the read: an inventory no plugin can parse is an error, not an
# empty inventory with a warning (docs: INVENTORY_UNPARSED_IS_FAILED,
# INVENTORY_ANY_UNPARSED_IS_FAILED in ansible-core's config/base.yml).
STRICT = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
}
# Warnings of ansible-inventory that mean part of the inventory was ignored: problems here.
IGNORED_PARTS = (re.compile(r"Skipping unexpected key \((?P<key>[^)]*)\) in group \((?P<group>[^)]*)\)"),)
PLUGIN_FAILURE = re.compile(r"^\[WARNING\]: Failed to parse inventory with '(?P<plugin>[^']+)' "
                            r"plugin: (?P<why>.*)$")


@dataclass(frozen=True)
class Inventory:
    source: str
    hostvars: dict[str, dict[str, Any]]  # every host, its variables merged as Ansible does

    @property
    def hosts(self) -> list[str]:
        return sorted(self.hostvars)


def _templated(value: Any) -> bool:
    """A Jinja value is only known on the controller at run time: the play checks it."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def ansible_inventory() -> str:
    """The ansible-inventory of this interpreter's environment (the one ansible-runner's
    ansible-playbook comes from), else the first on PATH."""
    local = Path(sys.executable).parent / "ansible-inventory"
    return str(local) if local.exists() else "ansible-inventory"


def _failure(source: str, stderr: str) -> list[Problem]:
    """Why Ansible could not read the inventory, one line per plugin that tried (the
    `auto` plugin's "not a plugin config" is noise unless it is the only one)."""
    reasons = [(m["plugin"], m["why"]) for m in map(PLUGIN_FAILURE.match, stderr.splitlines()) if m]
    specific = [r for r in reasons if r[0] != "auto"] or reasons
    if specific:
        return [Problem(source, "", f"Ansible cannot read it as an inventory ({plugin} plugin: "
                        f"{why})") for plugin, why in specific]
    errors = [line.removeprefix("[ERROR]: ").strip() for line in stderr.splitlines()
              if line.startswith("[ERROR]")]
    text = "; ".join(errors) or stderr.strip()[-500:] or "no output"
    return [Problem(source, "", f"Ansible cannot read it as an inventory: {text}")]


def read(source: str) -> tuple[Inventory, list[Problem]]:
    """Ansible's own view of the inventory, and the parts it silently ignored."""
    if not os.path.exists(source):
        raise UserError(Problem(source, "", "no such file or directory"))
    try:
        proc = subprocess.run([ansible_inventory(), "-i", source, "--list"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, **STRICT})
    except FileNotFoundError:
        raise UserError(Problem(source, "", "ansible-inventory is not installed; fix: pip install "
                                "ansible-core (zuul-k8s's own dependency)")) from None
    except subprocess.TimeoutExpired:
        raise UserError(Problem(source, "", "ansible-inventory took more than 300 s (an "
                                "inventory script or plugin that hangs?)")) from None
    if proc.returncode != 0:
        raise UserError(_failure(source, proc.stderr))
    try:
        data = json.loads(proc.stdout)
        hostvars = data.get("_meta", {}).get("hostvars", {})
        groups = [g for g in data.values() if isinstance(g, dict)]
    except (ValueError, AttributeError):
        raise UserError(Problem(source, "", "ansible-inventory printed no inventory: "
                                f"{proc.stdout[:200]!r}")) from None
    for group in groups:  # hosts without variables may be missing from _meta
        for host in group.get("hosts") or []:
            hostvars.setdefault(str(host), {})
    ignored = []
    for line in proc.stderr.splitlines():
        for pattern in IGNORED_PARTS:
            match = pattern.search(line)
            if match:
                ignored.append(Problem(source, f"{match['group']}.{match['key']}",
                                       "unknown key, Ansible ignores it; a group holds hosts, "
                                       "vars, children"))
    return Inventory(source, {str(h): dict(v or {}) for h, v in hostvars.items()}), ignored


def check_host(source: str, host: str, variables: dict[str, Any]) -> list[Problem]:
    """The kit's variables of one host (as Ansible merged them) against
    schemas/node-vars.schema.json."""
    ours = {str(k): v for k, v in variables.items() if str(k).startswith(VAR_PREFIX)
            and not _templated(v)}
    validator = jsonschema.Draft202012Validator(schemas.load(VARS_SCHEMA))
    problems = to_problems(list(validator.iter_errors(ours)), source)
    return [Problem(p.file, f"host {host}: {p.path}" if p.path != "(top)" else f"host {host}",
                    p.message) for p in problems]


def check(inventory: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    for host in inventory.hosts:
        problems += check_host(inventory.source, host, inventory.hostvars[host])
    if not problems and not inventory.hosts:
        problems.append(Problem(inventory.source, "", "defines no hosts; add them under all.hosts "
                                "or a group's hosts"))
    return problems


def load(source: str) -> list[str]:
    """The hosts of a valid inventory; raises UserError listing every problem."""
    inventory, ignored = read(source)
    problems = ignored + check(inventory)
    if problems:
        raise UserError(problems)
    return inventory.hosts

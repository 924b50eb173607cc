"""The kit's config: one YAML file, checked against schemas/config.schema.json.

Defaults live in the schema only; loading fills them in, so the renderer sees a
complete config and the documentation (generated from the schema) cannot drift.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from zuul_k8s import schemas, yamlio
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.schema_errors import to_problems

EXAMPLE = Path(__file__).resolve().parent / "examples" / "config.yaml"
SCHEMA_NAME = "config.schema.json"
BUILTIN = "(built-in example)"


@dataclass(frozen=True)
class Config:
    """A validated config with every default filled in."""

    source: str
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def uid(self) -> int:
        return int(self.data["user"]["uid"])

    @property
    def runs_as_root(self) -> bool:
        return self.uid == 0

    @property
    def target_minor(self) -> int:
        return int(self.data["kubernetes"]["version"].split(".")[1])

    @property
    def namespace(self) -> str:
        return str(self.data["namespace"]["name"])

    @property
    def name(self) -> str:
        return str(self.data["workload"]["name"])


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schemas.load(SCHEMA_NAME))


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in the schema's `default`s, recursively, without touching the input."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for key, sub in schema["properties"].items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = with_defaults(sub, out[key])
    return out


# Rules that span several keys, which JSON Schema would state only obscurely:
# (path of the offending key, predicate on the config, message with the fix).
CROSS_FIELD_RULES: tuple[tuple[str, Any, str], ...] = (
    (
        "state.type",
        lambda c: c["state"]["type"] == "pvc" and c["workload"]["kind"] != "StatefulSet",
        "a pvc state needs `workload.kind: StatefulSet` (a Deployment cannot have one "
        "volume per pod); use `state.type: emptyDir` or switch the kind",
    ),
    (
        "state.storageClassName",
        lambda c: "storageClassName" in c["state"] and c["state"]["type"] != "pvc",
        "storageClassName applies to `state.type: pvc` only; remove it",
    ),
)


def parse(raw: Any, source: str) -> Config:
    """A Config from already-parsed YAML; raises UserError listing every problem."""
    if raw is None:
        raise UserError(Problem(source, "", "is empty; run `zuul-k8s init` for a starter config"))
    if not isinstance(raw, dict):
        raise UserError(
            Problem(source, "(top)", f"expected a mapping of config keys, got {type(raw).__name__}")
        )
    errors = list(_validator().iter_errors(raw))
    if errors:
        raise UserError(to_problems(errors, source))
    data = with_defaults(schemas.load(SCHEMA_NAME), raw)
    problems = [Problem(source, path, msg) for path, broken, msg in CROSS_FIELD_RULES if broken(data)]
    if problems:
        raise UserError(problems)
    return Config(source=source, data=data)


def load_config(path: str | None) -> Config:
    """The config at `path` (or `-` for stdin); None means the built-in example."""
    if path is None:
        return parse(yamlio.load_one(str(EXAMPLE)), BUILTIN)
    return parse(yamlio.load_one(path), path)

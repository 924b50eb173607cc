"""The kit's config: one YAML file, checked against schemas/config.schema.json.

Defaults live in the schema only; loading fills them in, so the renderer sees a
complete config and the documentation (generated from the schema) cannot drift.
A null default means "absent": loading drops nulls, so `key: null` switches an
optional part off and the renderer never sees None.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from zuul_k8s import examples, networkpolicy, schemas, yamlio
from zuul_k8s import mounts as site
from zuul_k8s.errors import Problem, UserError, dotted
from zuul_k8s.schema_errors import StrictValidator, non_string_keys, to_problems, yaml_key

EXAMPLE = examples.CONFIG
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
def _validator() -> Any:
    return StrictValidator(schemas.load(SCHEMA_NAME))


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


def without_nulls(value: Any) -> Any:
    """The value with every null mapping entry dropped: null means absent."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _key_problems(value: Any, source: str) -> list[Problem]:
    """Keys must be strings: YAML reads `1:`, `true:` or `null:` as other types."""
    out = []
    for path, key in non_string_keys(value):
        text, kind = yaml_key(key)
        out.append(Problem(source, dotted(path) or "(top)",
                           f"key {text} ({kind}) is not a string; quote it: \"{text}\""))
    return out


def _string_keys(value: Any) -> Any:
    """The value without its non-string keys (at any depth)."""
    if isinstance(value, dict):
        return {k: _string_keys(v) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


# Labels the kit sets itself: the selector labels tie the workload, its Service
# and its PodDisruptionBudget to the pods (changing one breaks them all), and
# the Pod Security labels follow kubernetes.podSecurityLevel.
SELECTOR_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/instance")
PSA_PREFIX = "pod-security.kubernetes.io/"


def _reserved_labels(data: dict[str, Any]) -> list[tuple[str, str]]:
    labels = data.get("labels")
    out = []
    for key in labels if isinstance(labels, dict) else ():
        if key in SELECTOR_KEYS:
            out.append((f"labels.{key}", "is a selector label the kit sets: the Deployment/StatefulSet, "
                        "its Service and PodDisruptionBudget select the pods by it; remove it (the "
                        "instance label follows workload.name)"))
        elif isinstance(key, str) and key.startswith(PSA_PREFIX):
            out.append((f"labels.{key}", "Pod Security labels are set on the Namespace from the "
                        "target version and the level; remove it and set kubernetes.podSecurityLevel"))
    return out


# Annotations that would set what `isolation` decides, or the kit's own (the
# zuul.conf checksum): (key prefix, why and the fix). The AppArmor annotation is
# still read, and the API server refuses pods whose annotation and field differ;
# the seccomp annotations are deprecated and only mislead whoever reads the pod.
RESERVED_ANNOTATIONS: tuple[tuple[str, str], ...] = (
    ("container.apparmor.security.beta.kubernetes.io/",
     "would set an AppArmor profile beside the one isolation.apparmor sets; remove it and set isolation.apparmor"),
    ("seccomp.security.alpha.kubernetes.io/",
     "would name a seccomp profile beside the one isolation.seccomp sets; remove it and set isolation.seccomp"),
    ("container.seccomp.security.alpha.kubernetes.io/",
     "would name a seccomp profile beside the one isolation.seccomp sets; remove it and set isolation.seccomp"),
    # CRI-O acts on these where its runtime config allows them (crio.conf
    # `allowed_annotations`): devices, user namespace modes, cgroup and seccomp settings.
    ("io.kubernetes.cri-o.",
     "is read by CRI-O, where allowed, to change devices, the user namespace or seccomp beside what the "
     "kit renders; remove it"),
    ("zuul-k8s.io/", "is the kit's own annotation (the zuul.conf checksum follows --zuul-conf); remove it"),
)


def _reserved_annotations(data: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for field in ("annotations", "podAnnotations"):
        annotations = data.get(field)
        for key in annotations if isinstance(annotations, dict) else ():
            for prefix, why in RESERVED_ANNOTATIONS:
                if isinstance(key, str) and key.startswith(prefix):
                    out.append((f"{field}.{key}", why))
    return out


@dataclass(frozen=True)
class Rule:
    """A rule that spans several keys, which JSON Schema would state only obscurely."""

    path: str  # the offending key, for the message
    reads: tuple[str, ...]  # keys the predicate reads: it runs only when all of them are valid
    broken: Callable[[dict[str, Any]], bool]  # on the config with defaults filled in
    message: str  # what is wrong and the fix


CROSS_FIELD_RULES: tuple[Rule, ...] = (
    Rule(
        "state.type", ("state.type", "workload.kind"),
        lambda c: c["state"]["type"] == "pvc" and c["workload"]["kind"] != "StatefulSet",
        "a pvc state needs `workload.kind: StatefulSet` (a Deployment cannot have one "
        "volume per pod); use `state.type: emptyDir` or switch the kind",
    ),
    Rule(
        "state.storageClassName", ("state.type", "state.storageClassName"),
        lambda c: "storageClassName" in c["state"] and c["state"]["type"] != "pvc",
        "storageClassName applies to `state.type: pvc` only; remove it",
    ),
)


def _overlaps(error_path: tuple[str, ...], read: tuple[str, ...]) -> bool:
    shorter = min(len(error_path), len(read))
    return error_path[:shorter] == read[:shorter]


def _rule_problems(raw: dict[str, Any], invalid: list[tuple[str, ...]], source: str) -> list[Problem]:
    """Cross-field rules and reserved labels, on every part of the config the schema found valid."""
    data = without_nulls(with_defaults(schemas.load(SCHEMA_NAME), raw))
    out = []
    for rule in CROSS_FIELD_RULES:
        reads = [tuple(r.split(".")) for r in rule.reads]
        if any(_overlaps(e, r) for e in invalid for r in reads):
            continue
        if rule.broken(data):
            out.append(Problem(source, rule.path, rule.message))
    found = (_reserved_labels(data) + _reserved_annotations(data) + site.entry_problems(data)
             + networkpolicy.cidr_problems(data))
    return out + [Problem(source, path, message) for path, message in found]


def _site_clashes(config: Config) -> list[Problem]:
    """`mounts` paths and `env` names the rendered pod already uses (the kit's own, or an earlier entry)."""
    from zuul_k8s.render import executor_container  # render reads Config: import it here, not at the top

    kit = executor_container(Config(config.source, {**config.data, "mounts": [], "env": [], "envFrom": []}))
    return [Problem(config.source, path, message) for path, message in site.clashes(kit, config)]


def _invalid_paths(error: Any) -> list[tuple[str, ...]]:
    """The keys a schema error makes untrustworthy (an unknown key taints only itself)."""
    path = tuple(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        return [(*path, str(k)) for k in error.instance if k not in known]
    return [path]


def parse(raw: Any, source: str) -> Config:
    """A Config from already-parsed YAML; raises UserError listing every problem."""
    if raw is None:
        raise UserError(Problem(source, "", "is empty; run `zuul-k8s init` for a starter config"))
    if not isinstance(raw, dict):
        raise UserError(
            Problem(source, "(top)", f"expected a mapping of config keys, got {type(raw).__name__}")
        )
    key_problems = _key_problems(raw, source)
    raw = _string_keys(raw)  # reported above; the rest is checked as usual, so every error shows at once
    errors = list(_validator().iter_errors(raw))
    invalid = [path for error in errors for path in _invalid_paths(error)]
    problems = key_problems + to_problems(errors, source) + _rule_problems(raw, invalid, source)
    if problems:
        raise UserError(problems)
    data = without_nulls(with_defaults(schemas.load(SCHEMA_NAME), raw))
    config = Config(source=source, data=data)
    clashes = _site_clashes(config)
    if clashes:
        raise UserError(clashes)
    return config


def load_config(path: str | None) -> Config:
    """The config at `path` (or `-` for stdin); None means the built-in example."""
    if path is None:
        return parse(yamlio.load_one(str(EXAMPLE)), BUILTIN)
    return parse(yamlio.load_one(path), path)

"""Config loading: defaults from the schema, and every bad input as one clear message."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config, zuul_k8s
from zuul_k8s import schemas
from zuul_k8s.config import load_config
from zuul_k8s.errors import UserError
from zuul_k8s.schema_errors import ecma_pattern


def test_builtin_example_is_complete() -> None:
    cfg = load_config(None)
    assert cfg.uid == 10001
    assert cfg["isolation"]["seccomp"] == "Localhost"
    assert cfg["kubernetes"]["version"] == "1.35"
    assert cfg["secrets"]["zuulConf"] == {"name": "zuul-config", "key": "zuul.conf"}


def test_empty_mapping_gets_every_default() -> None:
    assert config().data == load_config(None).data


def test_cross_field_rule_names_the_key() -> None:
    with pytest.raises(UserError) as caught:
        config(state={"type": "pvc"})
    assert [str(p) for p in caught.value.problems] == [
        "test.yaml:state.type: a pvc state needs `workload.kind: StatefulSet` (a Deployment cannot "
        "have one volume per pod); use `state.type: emptyDir` or switch the kind"
    ]


# "Billion laughs": 40 levels of doubling, 2**40 leaves once expanded.
ALIAS_BOMB = "l0: &l0 [lol, lol]\n" + "".join(
    f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 41)
)

# (file content, fragment the message must contain)
BAD_INPUTS = [
    pytest.param("workload: {replicas: two}\n", "workload.replicas: expected integer", id="wrong-type"),
    pytest.param("workload: {replica: 2}\n", "workload.replica: unknown key; allowed keys: kind, name, replicas", id="unknown-key"),
    pytest.param("bogus: 1\n", "bogus: unknown key", id="unknown-top-key"),
    pytest.param("namespace: {name: 'zuul; rm -rf /'}\n", "namespace.name: 'zuul; rm -rf /' is not valid", id="shell-injection-name"),
    pytest.param("workload: {name: \"x\\n---\\nkind: Pod\"}\n", "workload.name:", id="yaml-injection-name"),
    pytest.param("image: 'quay.io/zuul:$(id)'\n", "image: 'quay.io/zuul:$(id)' is not valid", id="injection-image"),
    pytest.param("image: quay.io/zuul-ci/zuul-executor\n", "image: 'quay.io/zuul-ci/zuul-executor' is not valid", id="image-without-tag"),
    pytest.param("workload: {replicas: 99999999999999999999999}\n", "workload.replicas: 99999999999999999999999 is out of range", id="huge-number"),
    # PyYAML reads `1e400` (no dot, no exponent sign) as a string, `1.0e+400` as the float inf.
    pytest.param("gracefulStopSeconds: 1e400\n", "gracefulStopSeconds: expected integer, got str", id="float-like-string"),
    pytest.param("gracefulStopSeconds: 1.0e+400\n", "gracefulStopSeconds: expected integer, got float inf", id="huge-float"),
    pytest.param("user: {uid: 0.0}\n", "user.uid: expected integer, got float 0.0", id="float-uid"),
    pytest.param("workload: {replicas: 2.0}\n", "workload.replicas: expected integer, got float 2.0", id="float-replicas"),
    pytest.param("namespace: {name: \"zuul\\n\"}\n", "namespace.name: 'zuul\\n' is not valid", id="trailing-newline-namespace"),
    pytest.param("workload: {name: \"zuul-executor\\n\"}\n", "workload.name: 'zuul-executor\\n' is not valid",
                 id="trailing-newline-name"),
    pytest.param("image: \"quay.io/a/b:1.0\\n\"\n", "image: 'quay.io/a/b:1.0\\n' is not valid", id="trailing-newline-image"),
    pytest.param("labels: {1: x}\n", "labels: key 1 (int) is not a string; quote it", id="int-label-key"),
    pytest.param("annotations: {null: x}\n", "annotations: key null (null) is not a string; quote it: \"null\"", id="null-annotation-key"),
    pytest.param("labels: {app.kubernetes.io/instance: other}\n",
                 "labels.app.kubernetes.io/instance: is a selector label the kit sets", id="selector-label"),
    pytest.param("labels: {pod-security.kubernetes.io/enforce: privileged}\n",
                 "set kubernetes.podSecurityLevel", id="pod-security-label"),
    pytest.param("kubernetes: {podSecurityLevel: restricted}\n",
                 "'restricted' is not one of: privileged, baseline", id="restricted-level"),
    pytest.param("kubernetes: {version: '1.29'}\n", "procMount: Unmasked is alpha before 1.31", id="version-below-1.31"),
    pytest.param("kubernetes: {version: '1.24'}\n", "kubernetes.version: '1.24' is not valid", id="unsupported-version"),
    pytest.param("isolation: {seccomp: RuntimeDefault}\n", "isolation.seccomp: 'RuntimeDefault' is not one of: Localhost, Unconfined", id="runtime-default-seccomp"),
    pytest.param("isolation: {seccompProfile: ../../etc/passwd}\n", "isolation.seccompProfile:", id="path-traversal"),
    pytest.param("labels: {'bad key!': x}\n", "labels:", id="bad-label-key"),
    pytest.param("", "is empty; run `zuul-k8s init`", id="empty-file"),
    pytest.param("- just\n- a list\n", "(top): expected a mapping of config keys, got list", id="not-a-mapping"),
    pytest.param("workload: [unclosed\n", "not valid YAML", id="not-yaml"),
    pytest.param("a: 1\na: 2\n", "duplicate key 'a'", id="duplicate-key"),
    pytest.param(ALIAS_BOMB, "its YAML aliases expand to more than 100000 extra nodes", id="alias-bomb"),
    pytest.param("a: &a [*a]\n", "holds a recursive YAML alias (line 1)", id="recursive-alias"),
    pytest.param("[" * 20000, "nests too deeply to read", id="deep-nesting"),
    pytest.param("a: 1\n---\nb: 2\n", "holds several YAML documents", id="two-documents"),
]


@pytest.mark.parametrize(("content", "expected"), BAD_INPUTS)
def test_bad_config_exits_2_with_one_clear_message(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content, encoding="utf-8")
    result = zuul_k8s("validate", "-c", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}:" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("workload: {kind: Job, replicas: -1}\nnamespace: {name: UPPER}\nextra: 1\n")
    result = zuul_k8s("render", "-c", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        f"{path}:extra", f"{path}:namespace.name", f"{path}:workload.kind", f"{path}:workload.replicas",
    ]


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    result = zuul_k8s("validate", "-c", str(path))
    assert result.returncode == 2
    assert "is a binary file, not YAML" in result.stderr


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"image: caf\xe9\n")
    result = zuul_k8s("validate", "-c", str(path))
    assert result.returncode == 2
    assert "is not UTF-8 text" in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = zuul_k8s("render", "-c", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    result = zuul_k8s("render", "-c", str(tmp_path))
    assert result.returncode == 2
    assert "is a directory" in result.stderr


def test_config_from_stdin() -> None:
    result = zuul_k8s("render", "-c", "-", stdin="workload: {replicas: 5}\n")
    assert result.returncode == 0, result.stderr
    assert "replicas: 5" in result.stdout


def test_usage_error_exits_2() -> None:
    result = zuul_k8s("render", "--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def _properties(node: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any], bool]]:
    """(path, schema, required) of every property in the config schema, array items included."""
    out = []
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.append((path, sub, key in node.get("required", [])))
        out += _properties(sub, path)
        if "properties" in sub.get("items", {}):
            out += _properties(sub["items"], f"{path}[]")
    return out


SCHEMA_PROPERTIES = _properties(schemas.load("config.schema.json"))


def test_every_optional_property_has_a_default() -> None:
    missing = [path for path, sub, required in SCHEMA_PROPERTIES if not required and "default" not in sub]
    assert missing == []


def _nested(path: str, value: Any) -> dict[str, Any]:
    """`{"a": {"b": value}}` for "a.b", each parent starting from its default (a Secret needs its name)."""
    *parents, leaf = path.split(".")
    raw: dict[str, Any] = {}
    node, schema = raw, schemas.load("config.schema.json")
    for key in parents:
        schema = schema["properties"][key]
        default = schema.get("default")
        node[key] = copy.deepcopy(default) if isinstance(default, dict) else {}
        node = node[key]
    node[leaf] = value
    return raw


PATTERNED = [(path, sub["default"]) for path, sub, _ in SCHEMA_PROPERTIES
             if "pattern" in sub and isinstance(sub.get("default"), str)]


@pytest.mark.parametrize(("path", "default"), PATTERNED, ids=[p for p, _ in PATTERNED])
def test_no_pattern_lets_a_trailing_newline_through(path: str, default: str) -> None:
    config(**_nested(path, default))  # the default itself is valid
    with pytest.raises(UserError) as caught:
        config(**_nested(path, default + "\n"))
    assert [p.path for p in caught.value.problems] == [path]


def test_patterns_anchor_like_ecma_262() -> None:
    assert ecma_pattern("^[a-z]+$") == r"^[a-z]+\Z"
    assert ecma_pattern(r"^a\$[$]$") == r"^a\$[$]\Z"  # escaped and bracketed `$` stay literal
    assert ecma_pattern("^[]$]$") == r"^[]$]\Z"  # a leading ']' is part of the class
    assert ecma_pattern("(^|/)x(/|$)") == r"(^|/)x(/|\Z)"


INTEGERS = [(path, sub["default"]) for path, sub, _ in SCHEMA_PROPERTIES
            if sub.get("type") == "integer" and isinstance(sub.get("default"), int)]


@pytest.mark.parametrize(("path", "default"), INTEGERS, ids=[p for p, _ in INTEGERS])
def test_integers_refuse_floats(path: str, default: int) -> None:
    assert config(**_nested(path, default))
    with pytest.raises(UserError) as caught:
        config(**_nested(path, float(default)))
    assert [str(p) for p in caught.value.problems] == [
        f"test.yaml:{path}: expected integer, got float {float(default)!r}"]


def test_cross_field_rules_run_beside_schema_errors() -> None:
    with pytest.raises(UserError) as caught:
        config(workload={"replicas": -1}, state={"type": "pvc"}, extra=1)
    assert [p.path for p in caught.value.problems] == ["extra", "workload.replicas", "state.type"]


def test_cross_field_rules_skip_keys_the_schema_refused() -> None:
    with pytest.raises(UserError) as caught:
        config(workload={"kind": "Job"}, state={"type": "pvc"})
    assert [p.path for p in caught.value.problems] == ["workload.kind"]


def test_non_string_keys_anywhere_are_refused_with_their_path() -> None:
    with pytest.raises(UserError) as caught:
        config(scheduling={"affinity": {"nodeAffinity": {True: 1}}}, labels={7: "x"}, workload={"replicas": "2"})
    assert [str(p) for p in caught.value.problems] == [
        'test.yaml:scheduling.affinity.nodeAffinity: key true (bool) is not a string; quote it: "true"',
        'test.yaml:labels: key 7 (int) is not a string; quote it: "7"',
        "test.yaml:workload.replicas: expected integer, got str '2'",
    ]


def test_secrets_default_per_key_and_null_switches_one_off() -> None:
    partial = config(secrets={"zuulConf": {"name": "x"}})
    assert partial["secrets"] == {"zuulConf": {"name": "x", "key": "zuul.conf"},
                                  "sshKey": {"name": "zuul-ssh-key", "key": "id_rsa"},
                                  "zookeeperTls": {"name": "zookeeper-client-tls"}}
    off = config(secrets={"sshKey": None})
    assert off["secrets"] == {"zuulConf": {"name": "zuul-config", "key": "zuul.conf"},
                              "zookeeperTls": {"name": "zookeeper-client-tls"}}


def test_resources_replace_the_default_as_a_whole() -> None:
    assert config(resources={"requests": {"memory": "16Gi"}})["resources"] == {"requests": {"memory": "16Gi"}}
    assert config(resources={"limits": {"memory": None}})["resources"] == {"limits": {}}


def test_null_defaults_never_reach_the_config() -> None:
    def nulls(value: Any) -> bool:
        if isinstance(value, dict):
            return any(v is None or nulls(v) for v in value.values())
        return isinstance(value, list) and any(nulls(v) for v in value)

    cfg = config(scheduling={"tolerations": [{"key": "a", "operator": "Exists", "value": None}]},
                 state={"storageClassName": None})
    assert not nulls(cfg.data)
    assert cfg["scheduling"]["tolerations"] == [{"key": "a", "operator": "Exists"}]


def test_reserved_label_next_to_a_schema_error_is_reported_too() -> None:
    with pytest.raises(UserError) as caught:
        config(labels={"app.kubernetes.io/name": "x", "ok": "y"}, workload={"replicas": "two"})
    assert [p.path for p in caught.value.problems] == ["workload.replicas", "labels.app.kubernetes.io/name"]


def test_init_and_help_do_not_import_jsonschema_and_render_not_kubernetes(tmp_path: Path) -> None:
    """Every command builds the whole parser: a heavy module-level import makes them all slow."""
    probe = (
        "import sys; from zuul_k8s.cli import main; rc = main(sys.argv[1:]); "
        "print(rc, 'jsonschema' in sys.modules, 'kubernetes' in sys.modules, file=sys.stderr)"
    )

    def imports(*args: str) -> str:
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
        return result.stderr.strip().splitlines()[-1]

    assert imports("init", str(tmp_path / "c.yaml")) == "0 False False"
    assert imports("render", "-o", str(tmp_path / "out")) == "0 True False"
    assert imports("validate", "-o", "json") == "0 True False"

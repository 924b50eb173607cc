"""Config loading: defaults from the schema, and every bad input as one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import config, zuul_k8s
from zuul_k8s.config import load_config
from zuul_k8s.errors import UserError


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
    pytest.param("gracefulStopSeconds: 1e400\n", "gracefulStopSeconds: expected integer", id="huge-float"),
    pytest.param("kubernetes: {version: '1.24'}\n", "kubernetes.version: '1.24' is not valid", id="unsupported-version"),
    pytest.param("isolation: {seccomp: RuntimeDefault}\n", "isolation.seccomp: 'RuntimeDefault' is not one of: Localhost, Unconfined", id="runtime-default-seccomp"),
    pytest.param("isolation: {seccompProfile: ../../etc/passwd}\n", "isolation.seccompProfile:", id="path-traversal"),
    pytest.param("labels: {'bad key!': x}\n", "labels:", id="bad-label-key"),
    pytest.param("", "is empty; run `zuul-k8s init`", id="empty-file"),
    pytest.param("- just\n- a list\n", "(top): expected a mapping of config keys, got list", id="not-a-mapping"),
    pytest.param("workload: [unclosed\n", "not valid YAML", id="not-yaml"),
    pytest.param("a: 1\na: 2\n", "duplicate key 'a'", id="duplicate-key"),
    pytest.param(ALIAS_BOMB, "YAML aliases", id="alias-bomb"),
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

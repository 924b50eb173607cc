"""How the harness reads the rendered pod (pure: no Zuul, no podman)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import pod
from zuul_k8s.config import load_config
from zuul_k8s.render import render

SECRETS = {"zuul-config": {"zuul.conf": b"[executor]\n"}, "zuul-ssh-key": {"id_rsa": b"KEY"},
           "zookeeper-client-tls": {"ca.crt": b"CA", "tls.crt": b"CRT", "tls.key": b"KEY"}}
FIELDS = {"status.podIP": "127.0.0.10", "metadata.name": "zuul-executor-0"}


@pytest.mark.parametrize(("container", "expected"), [
    ({"command": ["a", "b"], "args": ["c"]}, (["a", "b"], ["c"])),  # command replaces ENTRYPOINT, drops CMD
    ({"command": ["a"]}, (["a"], [])),
    ({"args": ["c"]}, (None, ["c"])),  # args alone replaces CMD only
    ({}, (None, None)),  # the image decides
])
def test_command_and_args_as_the_kubelet_applies_them(container: dict[str, Any], expected: tuple[Any, Any]) -> None:
    assert pod.command(container, {}) == expected


def test_env_expands_earlier_variables_and_downward_fields() -> None:
    container = {"env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HOST", "value": "$(POD_NAME).svc"},
        {"name": "LITERAL", "value": "$$(POD_NAME)"},
        {"name": "UNKNOWN", "value": "$(NOPE)"},
    ]}
    assert pod.environment(container, FIELDS) == [
        ("POD_NAME", "zuul-executor-0"), ("HOST", "zuul-executor-0.svc"), ("LITERAL", "$(POD_NAME)"),
        ("UNKNOWN", "$(NOPE)")]


def test_a_field_without_a_stand_in_is_refused() -> None:
    container = {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}}]}
    with pytest.raises(pod.Unsupported, match="env X"):
        pod.environment(container, FIELDS)


def test_the_rendered_pod_says_where_each_secret_is() -> None:
    plan = pod.plan(render(load_config(None), b"[executor]\n"), SECRETS, FIELDS)
    conf = pod.secret_path(plan, "zuul-config", "zuul.conf")
    key = pod.secret_path(plan, "zuul-ssh-key", "id_rsa")
    ca = pod.secret_path(plan, "zookeeper-client-tls", "ca.crt")
    assert conf is not None and conf.endswith("zuul.conf")
    assert key is not None and key.endswith("/id_rsa")
    assert ca is not None and ca.endswith("/ca.crt")
    assert pod.secret_path(plan, "zuul-ssh-key", "absent") is None
    assert pod.volume_path(plan, "state") is not None
    files = {f.key: f for m in plan.mounts for f in m.volume.files}
    assert files["id_rsa"].content == b"KEY" and "KEY" not in repr(files["id_rsa"])


def test_a_missing_secret_is_an_error_naming_it() -> None:
    with pytest.raises(pod.Unsupported, match="zuul-ssh-key"):
        pod.plan(render(load_config(None), None), {k: v for k, v in SECRETS.items() if k != "zuul-ssh-key"},
                 FIELDS)


def test_probe_ports_resolve_named_container_ports() -> None:
    container = {"ports": [{"name": "prometheus", "containerPort": 9091}],
                 "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "prometheus"}}}
    (probe,) = pod.probes(container)
    assert (probe.port, probe.path, probe.period, probe.timeout, probe.failure_threshold) == (
        9091, "/health/ready", 10, 1, 3)
    with pytest.raises(pod.Unsupported, match="names no port"):
        pod.port_number(container, "finger")

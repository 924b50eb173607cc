"""The renderer: golden output per variant, determinism, and the secure pod settings."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config
from zuul_k8s import yamlio
from zuul_k8s.render import CHECKSUM_ANNOTATION, render

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("ZUUL_K8S_UPDATE_GOLDEN"))

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "root": {"user": {"uid": 0, "gid": 0, "fsGroup": 0}},
    "statefulset-pvc": {
        "workload": {"kind": "StatefulSet", "replicas": 3},
        "state": {"type": "pvc", "size": "200Gi", "storageClassName": "fast"},
    },
    "statefulset-emptydir": {"workload": {"kind": "StatefulSet"}},
    "selinux-container-engine": {"isolation": {"selinux": "container_engine_t"}},
    "selinux-none-apparmor-none": {"isolation": {"selinux": "none", "apparmor": "none"}},
    "unconfined": {"isolation": {"seccomp": "Unconfined", "apparmor": "Unconfined"}},
    "no-namespace": {"namespace": {"name": "ci", "create": False}},
    "kubernetes-1.34": {"kubernetes": {"version": "1.34"}},
    "scheduled": {
        "scheduling": {
            "nodeSelector": {"zuul.example.org/executor": "true"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "zuul", "effect": "NoSchedule"}],
            "priorityClassName": "zuul-executor",
        },
        "labels": {"team": "ci"},
        "annotations": {"example.org/owner": "ci-team"},
        "secrets": {"zuulConf": {"name": "conf", "key": "executor.conf"}},
    },
    # Issue 13: what installations add, and the NetworkPolicy (tests/core/test_site.py, test_networkpolicy.py).
    "site-mounts-env": {
        "mounts": [
            {"secret": "gerrit-connection", "path": "/etc/zuul/connections/gerrit"},
            {"secret": "github-app", "key": "app_key", "path": "/etc/zuul/github/app.pem", "mode": "0400"},
            {"configMap": "zuul-logging", "key": "logging.yaml", "path": "/etc/zuul/logging.yaml"},
            {"configMap": "corp-ca", "path": "/etc/ssl/corp", "optional": True},
        ],
        "env": [
            {"name": "ZUUL_GERRIT_USER", "value": "zuul"},
            {"name": "ZUUL_DB_PASSWORD", "secretKeyRef": {"name": "zuul-db", "key": "password"}},
            {"name": "ZUUL_REGION", "configMapKeyRef": {"name": "site", "key": "region", "optional": True}},
        ],
        "envFrom": [{"secret": "zuul-env", "prefix": "ZUUL_"}, {"configMap": "proxy", "optional": True}],
        "imagePullSecrets": ["registry-login"],
        "hostAliases": [{"ip": "192.0.2.10", "hostnames": ["review.example.org"]}],
        "podAnnotations": {"example.org/scrape": "true"},
    },
    "spread-zones-statefulset": {
        "workload": {"kind": "StatefulSet"},
        "scheduling": {"priorityClassName": "ci-high", "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}]},
    },
    "networkpolicy-custom": {
        "ports": {"finger": 7979, "prometheus": 9100},
        "networkPolicy": {
            "fingerFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "zuul-web"}},
                            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "zuul-web"}}}],
            "metricsFrom": [],
            "denyApiServer": ["10.96.0.1/32", "172.18.0.2/32"],
            "denyEgress": ["192.168.0.0/16", "2001:db8::/32"],
        },
    },
    "networkpolicy-off-no-spread": {
        "networkPolicy": {"enabled": False},
        "scheduling": {"topologySpreadConstraints": []},
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden(variant: str) -> None:
    text = yamlio.dump_all(render(config(**VARIANTS[variant])))
    path = GOLDEN / f"{variant}.yaml"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} differs from the renderer's output; if the change is intended, "
        "regenerate with: ZUUL_K8S_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_render.py"
    )


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    return workload["spec"]["template"]


def test_same_input_gives_identical_bytes() -> None:
    cfg = config(workload={"kind": "StatefulSet"}, state={"type": "pvc"})
    assert yamlio.dump_all(render(cfg, b"[executor]\n")) == yamlio.dump_all(render(cfg, b"[executor]\n"))


def test_secure_pod_settings_uid_10001() -> None:
    pod = _pod(render(config()))
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["hostUsers"] is False
    assert container["securityContext"] == {
        "procMount": "Unmasked",
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "profiles/zuul-executor.json"}
    assert spec["terminationGracePeriodSeconds"] == 10800
    assert "terminationGracePeriodSeconds" not in container
    assert spec["automountServiceAccountToken"] is False


def test_root_executor_gets_setfcap_and_nothing_else() -> None:
    context = _pod(render(config(user={"uid": 0})))["spec"]["containers"][0]["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["SETFCAP"]}


def test_hostname_from_pod_ip_or_stable_dns_name() -> None:
    env = _pod(render(config()))["spec"]["containers"][0]["env"]
    assert env == [{"name": "HOME", "value": "/var/lib/zuul"},
                   {"name": "ZUUL_EXECUTOR_HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    env = _pod(render(config(workload={"kind": "StatefulSet"})))["spec"]["containers"][0]["env"]
    assert env[-1] == {"name": "ZUUL_EXECUTOR_HOSTNAME",
                       "value": "$(POD_NAME).zuul-executor.zuul.svc.cluster.local"}


def test_rolling_update_never_lowers_capacity() -> None:
    deployment = next(o for o in render(config()) if o["kind"] == "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_zuul_conf_checksum_rolls_pods_but_content_is_never_rendered() -> None:
    secret = b"[executor]\nprivate_key_file=/var/lib/zuul/ssh/id_rsa\n# password=hunter2-do-not-leak\n"
    first = render(config(), secret)
    text = yamlio.dump_all(first)
    assert "hunter2" not in text
    checksum = _pod(first)["metadata"]["annotations"][CHECKSUM_ANNOTATION]
    assert len(checksum) == 64
    changed = _pod(render(config(), secret + b"x"))["metadata"]["annotations"][CHECKSUM_ANNOTATION]
    assert changed != checksum
    assert "annotations" not in _pod(render(config()))["metadata"]


@pytest.mark.parametrize(("minor", "enforce"), [(35, "baseline"), (36, "baseline"), (34, "privileged"), (33, "privileged")])
def test_namespace_labels_follow_the_target_version(minor: int, enforce: str) -> None:
    namespace = render(config(kubernetes={"version": f"1.{minor}"}))[0]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == enforce
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v1.{minor}"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"


def test_order_is_dependency_order() -> None:
    kinds = [o["kind"] for o in render(config())]
    assert kinds == ["Namespace", "ServiceAccount", "Service", "NetworkPolicy", "Deployment", "PodDisruptionBudget"]
    assert "Namespace" not in [o["kind"] for o in render(config(namespace={"create": False}))]


def test_rendered_objects_never_alias_the_config() -> None:
    cfg = config(
        resources={"requests": {"cpu": "2"}, "limits": {"memory": "4Gi"}},
        scheduling={"nodeSelector": {"zuul": "yes"}, "tolerations": [{"key": "k", "operator": "Exists"}],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "zuul", "operator": "In", "values": ["yes"]}]}]}}}},
        labels={"team": "ci"}, annotations={"owner": "ci"},
    )
    before = copy.deepcopy(cfg.data)
    objects = render(cfg)

    def scramble(value: Any) -> None:
        """Change every mapping and list in the output, in place."""
        if isinstance(value, dict):
            for sub in list(value.values()):
                scramble(sub)
            value["scrambled"] = True
        elif isinstance(value, list):
            for sub in list(value):
                scramble(sub)
            value.append("scrambled")

    scramble(objects)
    assert cfg.data == before


def test_partial_secrets_keep_the_other_mounts() -> None:
    pod = _pod(render(config(secrets={"zuulConf": {"name": "x"}})))["spec"]
    assert [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]] == [
        "/etc/zuul/zuul.conf", "/var/lib/zuul", "/tmp", "/var/lib/zuul/.ssh", "/tls/client"]
    pod = _pod(render(config(secrets={"sshKey": None, "zookeeperTls": None})))["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["zuul-config", "state", "tmp"]


def test_null_toleration_fields_are_not_rendered() -> None:
    pod = _pod(render(config(scheduling={"tolerations": [{"key": None, "operator": "Exists", "effect": None}]})))
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]

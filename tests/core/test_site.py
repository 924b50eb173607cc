"""What installations add to the executor pod (issue 13): mounts, env, pull secrets, spread,
host aliases, pod annotations. Each key renders as Kubernetes reads it, passes the whole
validation, and cannot be used to loosen the pod (config refusals and contract findings).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.core.helpers import config, zuul_k8s
from zuul_k8s import podfiles
from zuul_k8s.errors import UserError
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.render import render
from zuul_k8s.validate import Target, validate

Obj = dict[str, Any]
POD = "spec.template.spec"
TARGET = Target(35, "baseline")

SITE: dict[str, Any] = {
    "mounts": [
        {"secret": "gerrit-connection", "path": "/etc/zuul/connections/gerrit"},
        {"secret": "github-app", "key": "app_key", "path": "/etc/zuul/github/app.pem", "mode": "0400"},
        {"configMap": "zuul-logging", "key": "logging.yaml", "path": "/etc/zuul/logging.yaml"},
        {"configMap": "corp-ca", "path": "/etc/ssl/corp", "mode": 0o444, "optional": True},
    ],
    "env": [
        {"name": "ZUUL_GERRIT_USER", "value": "zuul"},
        {"name": "ZUUL_DB_PASSWORD", "secretKeyRef": {"name": "zuul-db", "key": "password"}},
        {"name": "ZUUL_REGION", "configMapKeyRef": {"name": "site", "key": "region", "optional": True}},
    ],
    "envFrom": [{"secret": "zuul-env", "prefix": "ZUUL_"}, {"configMap": "proxy", "optional": True}],
    "imagePullSecrets": ["registry-login"],
    "hostAliases": [{"ip": "192.0.2.10", "hostnames": ["review.example.org"]},
                    {"ip": "2001:db8::1", "hostnames": ["git.example.org", "git"]}],
    "podAnnotations": {"example.org/scrape": "true"},
}


def _workload(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))


def _spec(objects: list[Obj]) -> Obj:
    return _workload(objects)["spec"]["template"]["spec"]


def _problems(**sections: Any) -> list[str]:
    with pytest.raises(UserError) as caught:
        config(**sections)
    return [str(p) for p in caught.value.problems]


def test_site_keys_render_as_kubernetes_reads_them() -> None:
    objects = render(config(**SITE))
    spec = _spec(objects)
    container = spec["containers"][0]
    extra = [v for v in spec["volumes"] if v["name"].startswith("extra-")]
    assert extra == [
        {"name": "extra-0", "secret": {"secretName": "gerrit-connection", "defaultMode": 0o440}},
        {"name": "extra-1", "secret": {"secretName": "github-app", "defaultMode": 0o400,
                                       "items": [{"key": "app_key", "path": "app_key"}]}},
        {"name": "extra-2", "configMap": {"name": "zuul-logging", "defaultMode": 0o444,
                                          "items": [{"key": "logging.yaml", "path": "logging.yaml"}]}},
        {"name": "extra-3", "configMap": {"name": "corp-ca", "defaultMode": 0o444, "optional": True}},
    ]
    assert container["volumeMounts"][-4:] == [
        {"name": "extra-0", "mountPath": "/etc/zuul/connections/gerrit", "readOnly": True},
        {"name": "extra-1", "mountPath": "/etc/zuul/github/app.pem", "readOnly": True, "subPath": "app_key"},
        {"name": "extra-2", "mountPath": "/etc/zuul/logging.yaml", "readOnly": True, "subPath": "logging.yaml"},
        {"name": "extra-3", "mountPath": "/etc/ssl/corp", "readOnly": True},
    ]
    assert container["env"][-3:] == [
        {"name": "ZUUL_GERRIT_USER", "value": "zuul"},
        {"name": "ZUUL_DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "zuul-db", "key": "password"}}},
        {"name": "ZUUL_REGION", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region",
                                                                   "optional": True}}},
    ]
    kit = [var["name"] for var in _spec(render(config()))["containers"][0]["env"]]
    assert [var["name"] for var in container["env"][:len(kit)]] == kit  # the kit's own come first, unchanged
    assert container["envFrom"] == [{"prefix": "ZUUL_", "secretRef": {"name": "zuul-env"}},
                                    {"configMapRef": {"name": "proxy", "optional": True}}]
    assert spec["imagePullSecrets"] == [{"name": "registry-login"}]
    assert spec["hostAliases"] == SITE["hostAliases"]
    pod_meta = _workload(objects)["spec"]["template"]["metadata"]
    assert pod_meta["annotations"] == {"example.org/scrape": "true"}
    assert all("annotations" not in o["metadata"] for o in objects)  # pod annotations stay on the pod


def test_site_keys_pass_every_engine() -> None:
    for kind in ("Deployment", "StatefulSet"):
        found = validate(render(config(workload={"kind": kind}, **SITE)), TARGET)
        assert found == [], found


def test_octal_modes_in_either_spelling_are_the_same() -> None:
    def mode(value: Any) -> int:
        return int(_spec(render(config(mounts=[{"secret": "s", "path": "/s", "mode": value}])))
                   ["volumes"][-1]["secret"]["defaultMode"])

    assert mode("0400") == mode("400") == mode(0o400) == 256
    assert _problems(mounts=[{"secret": "s", "path": "/s", "mode": "0800"}])
    assert _problems(mounts=[{"secret": "s", "path": "/s", "mode": 512}])


def test_default_spread_counts_the_executors_over_nodes() -> None:
    spec = _spec(render(config()))
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "zuul", "app.kubernetes.io/component": "executor",
                                          "app.kubernetes.io/instance": "zuul-executor"}}}]
    # The selector follows the workload's (and so the PDB's and Service's) selector.
    objects = render(config(workload={"name": "exec-b"}))
    selector = _workload(objects)["spec"]["selector"]
    assert _spec(objects)["topologySpreadConstraints"][0]["labelSelector"] == selector
    assert "topologySpreadConstraints" not in _spec(render(config(scheduling={"topologySpreadConstraints": []})))


def test_a_spread_constraint_with_its_own_selector_is_kept() -> None:
    own = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"tier": "ci"}}}
    assert _spec(render(config(scheduling={"topologySpreadConstraints": [own]})))["topologySpreadConstraints"] == [own]


def test_a_malformed_spread_constraint_is_an_openapi_error() -> None:
    objects = render(config(scheduling={"topologySpreadConstraints": [{"maxSkew": "one", "topologyKey": "x",
                                                                       "whenUnsatisfiable": "DoNotSchedule",
                                                                       "nodeAffinity": "Honor"}]}))
    errors = {(f.source, f.path) for f in validate(objects, TARGET) if f.severity is Severity.ERROR}
    assert ("openapi", f"{POD}.topologySpreadConstraints[0].maxSkew") in errors
    assert ("openapi", f"{POD}.topologySpreadConstraints[0].nodeAffinity") in errors  # nodeAffinityPolicy is meant


@pytest.mark.parametrize(("sections", "expected"), [
    ({"mounts": [{"hostPath": "/var/run", "path": "/x"}]}, "test.yaml:mounts[0].hostPath: unknown key"),
    ({"mounts": [{"secret": "a", "configMap": "b", "path": "/x"}]},
     "test.yaml:mounts[0]: give exactly one of `secret` and `configMap`"),
    ({"mounts": [{"path": "/x"}]}, "test.yaml:mounts[0]: give exactly one of `secret` and `configMap`"),
    ({"mounts": [{"secret": "a", "path": "/proc/sys"}]}, "test.yaml:mounts[0].path: /proc/sys is under /proc"),
    ({"mounts": [{"secret": "a", "path": "/dev"}]}, "test.yaml:mounts[0].path: /dev is under /proc, /sys, /dev"),
    ({"mounts": [{"secret": "a", "path": "/etc/../proc"}]}, "test.yaml:mounts[0].path: '/etc/../proc' is not valid"),
    ({"mounts": [{"secret": "a", "path": "relative"}]}, "test.yaml:mounts[0].path: 'relative' is not valid"),
    ({"mounts": [{"secret": "a", "key": "..", "path": "/x"}]}, "test.yaml:mounts[0].key: '..' is not valid"),
    ({"mounts": [{"secret": "a", "key": "..data", "path": "/x"}]}, "test.yaml:mounts[0].key: '..data' is not valid"),
    ({"mounts": [{"secret": "a", "path": "/var/lib/zuul"}]},
     "test.yaml:mounts[0].path: /var/lib/zuul is already mounted (by the kit, volume state)"),
    ({"mounts": [{"secret": "a", "path": "/x"}, {"configMap": "b", "path": "/x"}]},
     "test.yaml:mounts[1].path: /x is already mounted (by mounts[0])"),
    ({"env": [{"name": "ZUUL_EXECUTOR_HOSTNAME", "value": "x"}]},
     "test.yaml:env[0].name: ZUUL_EXECUTOR_HOSTNAME is set by the kit"),
    ({"env": [{"name": "A", "value": "x"}, {"name": "A", "value": "y"}]},
     "test.yaml:env[1].name: A is given by env[0] already"),
    ({"env": [{"name": "A", "value": "x", "secretKeyRef": {"name": "s", "key": "k"}}]},
     "test.yaml:env[0]: give exactly one of `value`, `secretKeyRef` and `configMapKeyRef`"),
    ({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]},
     "test.yaml:env[0].valueFrom: unknown key"),
    ({"envFrom": [{"prefix": "X"}]}, "test.yaml:envFrom[0]: give exactly one of `secret` and `configMap`"),
    ({"imagePullSecrets": [{"name": "x"}]}, "test.yaml:imagePullSecrets[0]: expected string"),
    ({"hostAliases": [{"ip": "1.2.3.999", "hostnames": ["a"]}]},
     "test.yaml:hostAliases[0].ip: '1.2.3.999' is not an IPv4 or IPv6 address"),
    ({"hostAliases": [{"ip": "1.2.3.4", "hostnames": []}]}, "test.yaml:hostAliases[0].hostnames: [] breaks minItems"),
    ({"podAnnotations": {"container.apparmor.security.beta.kubernetes.io/zuul-executor": "unconfined"}},
     "test.yaml:podAnnotations.container.apparmor.security.beta.kubernetes.io/zuul-executor: would set an AppArmor"),
    ({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
     "test.yaml:annotations.seccomp.security.alpha.kubernetes.io/pod: would name a seccomp profile"),
    ({"podAnnotations": {"io.kubernetes.cri-o.Devices": "/dev/fuse"}},
     "test.yaml:podAnnotations.io.kubernetes.cri-o.Devices: is read by CRI-O"),
    ({"podAnnotations": {"zuul-k8s.io/zuul-conf-sha256": "0"}},
     "test.yaml:podAnnotations.zuul-k8s.io/zuul-conf-sha256: is the kit's own annotation"),
    ({"hostNetwork": True}, "test.yaml:hostNetwork: unknown key"),
])
def test_site_keys_refuse_what_would_loosen_or_break_the_pod(sections: dict[str, Any], expected: str) -> None:
    problems = _problems(**sections)
    assert any(p.startswith(expected) for p in problems), problems


def test_mount_paths_follow_the_kits_own_when_secrets_are_switched_off() -> None:
    """Without the ZooKeeper TLS Secret its path is free: the clash check reads the rendered pod, not a list."""
    assert _problems(mounts=[{"secret": "k", "path": "/tls/client"}])
    spec = _spec(render(config(secrets={"zookeeperTls": None}, mounts=[{"secret": "k", "path": "/tls/client"}])))
    assert spec["containers"][0]["volumeMounts"][-1]["mountPath"] == "/tls/client"


def test_plain_env_values_are_rendered_but_referenced_secrets_never() -> None:
    text = str(render(config(env=[{"name": "PW", "secretKeyRef": {"name": "db", "key": "password"}}])))
    assert "'name': 'db', 'key': 'password'" in text  # only the reference


# The isolation contract on any manifest (`validate -f`): ways to the node, confinement switched off.
def _break(change: Any) -> list[Finding]:
    objects = render(config())
    change(_spec(objects))
    return validate(objects, TARGET)


def _found(findings: list[Finding], severity: Severity) -> set[tuple[str, str]]:
    return {(f.rule, f.path) for f in findings if f.source == "contract" and f.severity is severity}


NODE_ACCESS = [
    ("hostNetwork", lambda s: s.update(hostNetwork=True), "hostNamespace", f"{POD}.hostNetwork"),
    ("hostPID", lambda s: s.update(hostPID=True), "hostNamespace", f"{POD}.hostPID"),
    ("hostIPC", lambda s: s.update(hostIPC=True), "hostNamespace", f"{POD}.hostIPC"),
    ("hostPath volume", lambda s: s["volumes"].insert(0, {"name": "docker", "hostPath": {"path": "/var/run"}}),
     "hostPath", f"{POD}.volumes[0].hostPath"),
    ("bidirectional mount", lambda s: s["containers"][0]["volumeMounts"][1].update(mountPropagation="Bidirectional"),
     "mountPropagation", f"{POD}.containers[0].volumeMounts[1].mountPropagation"),
    ("spc_t on the pod", lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
     "selinux", f"{POD}.securityContext.seLinuxOptions.type"),
    ("unconfined_t on the container",
     lambda s: s["containers"][0]["securityContext"].update(seLinuxOptions={"type": "unconfined_t"}),
     "selinux", f"{POD}.containers[0].securityContext.seLinuxOptions.type"),
]


@pytest.mark.parametrize(("case", "change", "rule", "path"), NODE_ACCESS, ids=[c[0] for c in NODE_ACCESS])
def test_contract_refuses_ways_to_the_node(case: str, change: Any, rule: str, path: str) -> None:
    assert (rule, path) in _found(_break(change), Severity.ERROR)


def test_contract_warns_on_apparmor_switched_off_by_field_or_annotation() -> None:
    found = _found(_break(lambda s: s["containers"][0]["securityContext"].update(
        appArmorProfile={"type": "Unconfined"})), Severity.WARNING)
    assert ("apparmor", f"{POD}.containers[0].securityContext.appArmorProfile.type") in found
    objects = render(config())
    key = "container.apparmor.security.beta.kubernetes.io/zuul-executor"
    _workload(objects)["spec"]["template"]["metadata"]["annotations"] = {key: "unconfined"}
    assert ("apparmor", f"spec.template.metadata.annotations.{key}") in _found(validate(objects, TARGET),
                                                                               Severity.WARNING)


def test_contract_rules_read_other_deployers_pods_too() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "exec"},
           "spec": {"hostNetwork": True, "containers": [{"name": "zuul-executor", "image": "zuul/zuul-executor"}],
                    "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}
    found = _found(validate([pod], TARGET), Severity.ERROR)
    assert {("hostNamespace", "spec.hostNetwork"), ("hostPath", "spec.volumes[0].hostPath")} <= found


def test_cli_validate_reports_a_hostpath_in_a_file(tmp_path: Any) -> None:
    objects = render(config())
    spec = copy.deepcopy(_spec(objects))
    spec["volumes"].insert(0, {"name": "node", "hostPath": {"path": "/"}})
    _workload(objects)["spec"]["template"]["spec"] = spec
    from zuul_k8s import yamlio

    path = tmp_path / "x.yaml"
    path.write_text(yamlio.dump_all(objects), encoding="utf-8")
    result = zuul_k8s("validate", "-f", str(path))
    assert result.returncode == 1
    assert "spec.template.spec.volumes[0].hostPath: a hostPath volume" in result.stdout + result.stderr


# What the zuul.conf check reads: every mount of the rendered pod, generically.
def test_podfiles_lists_every_mount_with_source_and_mode() -> None:
    spec = _spec(render(config(**SITE)))
    mounts = podfiles.container_mounts(spec, spec["containers"][0])
    listing = podfiles.listing(mounts)
    assert ("/etc/zuul/zuul.conf", "secret/zuul-config[zuul.conf]", 0o440) in listing
    assert ("/var/lib/zuul", "emptyDir", None) in listing
    assert ("/etc/zuul/connections/gerrit", "secret/gerrit-connection", 0o440) in listing
    assert ("/etc/zuul/github/app.pem", "secret/github-app[app_key]", 0o400) in listing
    assert ("/etc/zuul/logging.yaml", "configMap/zuul-logging[logging.yaml]", 0o444) in listing
    assert ("/etc/ssl/corp", "configMap/corp-ca", 0o444) in listing
    assert len(listing) == len(spec["containers"][0]["volumeMounts"])
    assert podfiles.covering(mounts, "/etc/zuul/connections/gerrit/sshkey").name == "gerrit-connection"
    assert podfiles.covering(mounts, "/etc/zuul/github/app.pem").key == "app_key"
    assert podfiles.covering(mounts, "/etc/zuul/github/other.pem") is None  # a key mount is one file
    assert podfiles.covering(mounts, "/var/lib/zuul/builds/x").source == "emptyDir"


def test_podfiles_reads_item_modes_and_defaults_of_any_manifest() -> None:
    spec = {"volumes": [{"name": "k", "secret": {"secretName": "s", "items": [
        {"key": "id_rsa", "path": "key", "mode": 0o400}]}}, {"name": "c", "configMap": {"name": "m"}}],
        "containers": [{"name": "zuul-executor", "volumeMounts": [
            {"name": "k", "mountPath": "/k/id_rsa", "subPath": "key"}, {"name": "c", "mountPath": "/c"},
            {"name": "missing", "mountPath": "/m"}, "not a mapping"]}]}
    assert podfiles.listing(podfiles.container_mounts(spec, spec["containers"][0])) == [
        ("/k/id_rsa", "secret/s[id_rsa]", 0o400), ("/c", "configMap/m", 0o644), ("/m", "unknown", None)]


ISSUE_13_VARIANTS = ("site-mounts-env", "spread-zones-statefulset", "networkpolicy-custom", "networkpolicy-off-no-spread")


@pytest.mark.parametrize("variant", ISSUE_13_VARIANTS)
def test_each_new_golden_variant_passes_the_contract_schema_and_pod_security(variant: str) -> None:
    from tests.core.test_render import VARIANTS

    found = validate(render(config(**VARIANTS[variant])), TARGET)
    assert [f for f in found if f.severity is Severity.ERROR] == []
    expected = {"networkPolicy"} if variant == "networkpolicy-off-no-spread" else set()
    assert {f.rule for f in found} == expected


def test_the_zuul_conf_check_sees_files_mounted_by_the_site_keys() -> None:
    """zuul.conf names a log_config and a site variables file: `mounts` is how they get into the pod."""
    from zuul_k8s.validate.zuulconf import findings as zuul_conf_findings
    from zuul_k8s.zuulconf import load

    conf = load(b"[executor]\nlog_config=/etc/zuul/logging.yaml\nvariables=/etc/zuul/site/variables.yaml\n",
                "zuul.conf")

    def about_paths(**sections: Any) -> set[str]:
        found = zuul_conf_findings(conf, render(config(**sections)))
        return {key for f in found for key in ("log_config", "variables") if key in f.path + f.message}

    assert about_paths() == {"log_config", "variables"}
    mounted = about_paths(mounts=[
        {"configMap": "zuul-logging", "key": "logging.yaml", "path": "/etc/zuul/logging.yaml"},
        {"configMap": "zuul-site", "path": "/etc/zuul/site"}])
    assert mounted == set()


@pytest.mark.parametrize("value", ["a string", {"secret": "x"}, ["just-a-name"], 7])
def test_misshapen_site_keys_get_one_schema_message_each(value: Any) -> None:
    for key in ("mounts", "env", "envFrom", "hostAliases"):
        problems = _problems(**{key: value})
        assert len(problems) == 1, problems
        assert "Traceback" not in problems[0]

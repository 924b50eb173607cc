"""The executor's NetworkPolicy: rendered by default, only finger and metrics in, metadata
and listed networks out, checked by the strict OpenAPI schema, and missed by the contract
when a manifest set has none.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.helpers import config
from zuul_k8s.errors import UserError
from zuul_k8s.findings import Severity
from zuul_k8s.render import render
from zuul_k8s.validate import Target, validate

Obj = dict[str, Any]
TARGET = Target(35, "baseline")


def _policy(**sections: Any) -> Obj:
    return next(o for o in render(config(**sections)) if o["kind"] == "NetworkPolicy")


def _workload(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))


def test_rendered_by_default_before_the_workload_and_selecting_its_pods() -> None:
    objects = render(config())
    kinds = [o["kind"] for o in objects]
    assert kinds.index("NetworkPolicy") < kinds.index("Deployment")
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    workload = _workload(objects)
    assert policy["spec"]["podSelector"] == workload["spec"]["selector"]
    pdb = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
    service = next(o for o in objects if o["kind"] == "Service")
    assert pdb["spec"]["selector"] == workload["spec"]["selector"]
    assert service["spec"]["selector"] == workload["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_ingress_only_finger_from_zuul_web_and_metrics_from_monitoring() -> None:
    ingress = _policy(ports={"finger": 7979, "prometheus": 9100})["spec"]["ingress"]
    assert ingress == [
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "zuul-web"}}}],
         "ports": [{"protocol": "TCP", "port": 7979}]},
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
         "ports": [{"protocol": "TCP", "port": 9100}]},
    ]


def test_no_peers_means_no_rule_never_an_empty_from() -> None:
    """An ingress rule whose `from` is empty admits every source: an empty list must drop the rule."""
    ingress = _policy(networkPolicy={"fingerFrom": [], "metricsFrom": []})["spec"]["ingress"]
    assert ingress == []
    ingress = _policy(networkPolicy={"metricsFrom": []})["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in ingress] == [7900]
    assert all(rule["from"] for rule in ingress)


def test_egress_open_but_metadata_api_server_and_listed_networks() -> None:
    egress = _policy(networkPolicy={"denyApiServer": ["10.0.0.1/32", "172.18.0.2/32"],
                                    "denyEgress": ["192.168.10.0/24", "2001:db8::/32", "10.0.0.1/32"]})["spec"]["egress"]
    assert egress == [
        {"to": [{"namespaceSelector": {}}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "169.254.169.254/32", "10.0.0.1/32", "172.18.0.2/32", "192.168.10.0/24"]}},
                {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128", "2001:db8::/32"]}}]},
    ]


def test_default_egress_denies_exactly_the_cloud_metadata_addresses() -> None:
    blocks = [peer["ipBlock"] for peer in _policy()["spec"]["egress"][1]["to"]]
    assert blocks == [{"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]},
                      {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}]


def test_switched_off_renders_none_and_the_contract_says_so() -> None:
    objects = render(config(networkPolicy={"enabled": False}))
    assert "NetworkPolicy" not in [o["kind"] for o in objects]
    warnings = [f for f in validate(objects, TARGET) if f.rule == "networkPolicy"]
    assert [(f.severity, f.path) for f in warnings] == [(Severity.WARNING, "spec.template.metadata.labels")]
    assert not [f for f in validate(render(config()), TARGET) if f.rule == "networkPolicy"]


def test_contract_matches_policies_by_selector_and_namespace() -> None:
    objects = render(config(networkPolicy={"enabled": False}))
    workload = _workload(objects)

    def policy(selector: Obj, namespace: str = "zuul") -> Obj:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "p", "namespace": namespace},
                "spec": {"podSelector": selector, "policyTypes": ["Ingress"]}}

    def fenced(*extra: Obj) -> bool:
        return not [f for f in validate([*objects, *extra], TARGET) if f.rule == "networkPolicy"]

    assert fenced(policy({}))  # every pod of the namespace
    assert fenced(policy({"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                                                "values": ["executor", "merger"]}]}))
    assert not fenced(policy({"matchLabels": {"app.kubernetes.io/component": "web"}}))
    assert not fenced(policy({}, namespace="other"))
    assert not fenced(policy({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "DoesNotExist"}]}))
    assert workload["kind"] == "Deployment"


def test_custom_peers_pass_the_strict_openapi_schema() -> None:
    objects = render(config(networkPolicy={
        "fingerFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "zuul-web"}},
                        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}],
        "metricsFrom": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
        "denyEgress": ["10.2.0.0/16"]}))
    assert validate(objects, TARGET) == []


def test_a_malformed_selector_is_an_openapi_error_on_the_policy() -> None:
    objects = render(config(networkPolicy={"fingerFrom": [{"podSelector": {"matchLabels": ["zuul-web"]}}]}))
    errors = [(f.source, f.kind, f.path) for f in validate(objects, TARGET) if f.severity is Severity.ERROR]
    assert ("openapi", "NetworkPolicy", "spec.ingress[0].from[0].podSelector.matchLabels") in errors


@pytest.mark.parametrize(("entry", "message"), [
    ("10.0.0.1", "networkPolicy.denyEgress[0]: '10.0.0.1' is not valid"),
    ("10.0.0.1/33", "networkPolicy.denyEgress[0]: '10.0.0.1/33' is not a network in CIDR notation"),
    ("10.0.0.1/8", "networkPolicy.denyEgress[0]: '10.0.0.1/8' is not a network in CIDR notation"),
    ("0.0.0.0/0", "networkPolicy.denyEgress[0]: 0.0.0.0/0 would deny every address"),
    ("2001:DB8::/32", "networkPolicy.denyEgress[0]: write '2001:DB8::/32' as '2001:db8::/32'"),
])
def test_listed_networks_are_checked(entry: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        config(networkPolicy={"denyEgress": [entry]})
    assert any(str(p).startswith(f"test.yaml:{message}") for p in caught.value.problems), caught.value.problems


def test_an_empty_peer_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        config(networkPolicy={"fingerFrom": [{}]})
    assert [p.path for p in caught.value.problems] == ["networkPolicy.fingerFrom[0]"]


def _with_policy_spec(spec: Obj) -> list[Obj]:
    objects = render(config(networkPolicy={"enabled": False}))
    return [*objects, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": "hand-made", "namespace": "zuul"}, "spec": spec}]


ALL_PODS: Obj = {}
METADATA_OPEN = [
    ("ingress only: egress stays open", {"podSelector": ALL_PODS, "policyTypes": ["Ingress"]}),
    ("policyTypes defaulted to Ingress", {"podSelector": ALL_PODS, "ingress": []}),
    ("egress rule without to", {"podSelector": ALL_PODS, "policyTypes": ["Egress"], "egress": [{}]}),
    ("0.0.0.0/0 without except", {"podSelector": ALL_PODS, "policyTypes": ["Egress"],
                                  "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
    ("IPv6 left open", {"podSelector": ALL_PODS, "policyTypes": ["Egress"], "egress": [{"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}, {"ipBlock": {"cidr": "::/0"}}]}]}),
]
METADATA_FENCED = [
    ("deny all egress", {"podSelector": ALL_PODS, "policyTypes": ["Egress"]}),
    ("pods only", {"podSelector": ALL_PODS, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]}),
    ("both families excepted", {"podSelector": ALL_PODS, "policyTypes": ["Egress"], "egress": [{"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}}]}]}),
    ("malformed cidr allows nothing", {"podSelector": ALL_PODS, "policyTypes": ["Egress"],
                                       "egress": [{"to": [{"ipBlock": {"cidr": "everything"}}]}]}),
]


@pytest.mark.parametrize(("case", "spec"), METADATA_OPEN, ids=[c for c, _ in METADATA_OPEN])
def test_a_policy_that_leaves_the_metadata_service_open_is_a_warning(case: str, spec: Obj) -> None:
    found = [f for f in validate(_with_policy_spec(spec), TARGET) if f.source == "contract"]
    assert [(f.rule, f.severity) for f in found if f.rule in ("metadataReachable", "networkPolicy")] == [
        ("metadataReachable", Severity.WARNING)]


@pytest.mark.parametrize(("case", "spec"), METADATA_FENCED, ids=[c for c, _ in METADATA_FENCED])
def test_a_policy_that_fences_the_metadata_service_passes(case: str, spec: Obj) -> None:
    found = [f for f in validate(_with_policy_spec(spec), TARGET) if f.source == "contract"]
    assert not [f for f in found if f.rule in ("metadataReachable", "networkPolicy")]


def test_the_kits_own_policy_fences_the_metadata_service() -> None:
    assert not [f for f in validate(render(config()), TARGET) if f.rule == "metadataReachable"]

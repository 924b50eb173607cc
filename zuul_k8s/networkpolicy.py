"""The NetworkPolicy around the executor pods: config -> one object, and its config checks.

Untrusted job code runs in the executor pod's network namespace (bwrap's
`--share-net`, facts.md), so a job reaches whatever the pod can. The policy
admits only what the executor serves (finger from zuul-web, metrics from
monitoring) and keeps egress open, as jobs must reach their nodes, git hosts
and ZooKeeper, except the cloud metadata service and what the operator lists.
What each CNI enforces, and the API server's address after Service
translation, are in docs/security.md.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from zuul_k8s.workloads import as_list

Obj = dict[str, Any]

# Instance metadata services: AWS IMDS on 169.254.169.254 and, on Nitro
# instances, fd00:ec2::254 (AWS EC2 user guide, "Access instance metadata");
# GCP, Azure and OpenStack serve theirs on 169.254.169.254 too. They hand out
# the node's cloud credentials to anything that asks.
METADATA_CIDRS = ("169.254.169.254/32", "fd00:ec2::254/128")
METADATA_ADDRESSES = tuple(str(ipaddress.ip_network(c).network_address) for c in METADATA_CIDRS)
ANY = {4: "0.0.0.0/0", 6: "::/0"}


def _family(cidr: str) -> int:
    return ipaddress.ip_network(cidr).version


def denied(config: Any) -> list[str]:
    """Every network the executor's pods may not reach, metadata first, without repeats."""
    policy = config["networkPolicy"]
    return list(dict.fromkeys([*METADATA_CIDRS, *policy["denyApiServer"], *policy["denyEgress"]]))


def _ingress(config: Any) -> list[Obj]:
    policy, ports = config["networkPolicy"], config["ports"]
    rules = []
    for peers, port in ((policy["fingerFrom"], ports["finger"]), (policy["metricsFrom"], ports["prometheus"])):
        # An empty `from` admits every source: no peers means no rule at all.
        if peers:
            rules.append({"from": copy.deepcopy(peers), "ports": [{"protocol": "TCP", "port": port}]})
    return rules


def _egress(config: Any) -> list[Obj]:
    blocked = denied(config)
    blocks = []
    for family, cidr in ANY.items():
        block: Obj = {"cidr": cidr}
        exceptions = [c for c in blocked if _family(c) == family]
        if exceptions:
            block["except"] = exceptions
        blocks.append({"ipBlock": block})
    return [
        # Pods anywhere in the cluster (DNS, ZooKeeper, in-cluster git mirrors): by selector,
        # because Cilium never matches a pod's address with an ipBlock (cilium/cilium#19601).
        {"to": [{"namespaceSelector": {}}]},
        # Everything else, but the denied networks.
        {"to": blocks},
    ]


def network_policy(config: Any, metadata: Obj, selector: dict[str, str]) -> Obj:
    """The executor's NetworkPolicy; `metadata` and `selector` are the workload's."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": _ingress(config),
            "egress": _egress(config),
        },
    }


def _policy_types(spec: dict[str, Any]) -> list[str]:
    """policyTypes as the API server defaults them: Ingress, plus Egress when egress rules are given."""
    types = spec.get("policyTypes")
    if isinstance(types, list):
        return [t for t in types if isinstance(t, str)]
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _in_block(address: ipaddress.IPv4Address | ipaddress.IPv6Address, block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    try:
        if address not in ipaddress.ip_network(str(block.get("cidr")), strict=False):
            return False
        excepted = block.get("except") if isinstance(block.get("except"), list) else []
        return not any(address in ipaddress.ip_network(str(c), strict=False) for c in excepted)
    except ValueError:
        return False  # a malformed CIDR allows nothing (the OpenAPI engine or the API server says why)


def egress_allows(specs: list[dict[str, Any]], address: str) -> bool:
    """Do these NetworkPolicy specs, all selecting one pod, let it send to `address` (any port)?

    Policies add up: with no egress policy egress is open; otherwise some rule must
    allow it. A rule without `to` allows every destination; pod and namespace
    selectors never match an address outside the cluster's pods.
    """
    target = ipaddress.ip_address(address)
    egress = [s for s in specs if "Egress" in _policy_types(s)]
    if not egress:
        return True
    for spec in egress:
        for rule in as_list(spec.get("egress")):
            peers = rule.get("to") if isinstance(rule, dict) else None
            if not peers:
                return True
            if any(isinstance(p, dict) and _in_block(target, p.get("ipBlock")) for p in peers):
                return True
    return False


def cidr_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(config path, message) for each listed network that is not one, or denies everything."""
    policy = data.get("networkPolicy")
    out = []
    for key in ("denyApiServer", "denyEgress"):
        entries = policy.get(key) if isinstance(policy, dict) else None
        for index, cidr in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(cidr, str) or "/" not in cidr:
                continue  # the schema's pattern reports it
            path = f"networkPolicy.{key}[{index}]"
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                out.append((path, f"{cidr!r} is not a network in CIDR notation ({exc}); write e.g. "
                            "10.0.0.1/32 for one address, 10.0.0.0/8 for a network"))
                continue
            if network.prefixlen == 0:
                out.append((path, f"{cidr} would deny every address, so jobs could reach nothing; "
                            "list the networks to keep jobs away from"))
            elif str(network) != cidr:
                out.append((path, f"write {cidr!r} as {str(network)!r}, the form the API server stores"))
    return out

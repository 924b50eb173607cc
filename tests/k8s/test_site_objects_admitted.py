"""The real API server admits what issue 13 renders: the executor's NetworkPolicy
(default and custom, IPv4 and IPv6 exceptions) and a pod template carrying every
site key (mounts, env, pull secrets, spread, host aliases, pod annotations).

The strict OpenAPI schema checks shapes only; the API server also validates
meaning (an ipBlock's exceptions inside its cidr and of its family, canonical
CIDRs, unique mount paths, subPaths, host alias addresses, spread constraints)
and runs Pod Security admission against the namespace's labels. Each object is
created with dryRun=All in a namespace of the test's own.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.core.helpers import config
from tests.core.test_render import VARIANTS
from tests.k8s import fixtures
from zuul_k8s.cluster.client import ApiError, Cluster
from zuul_k8s.cluster.resources import resource_of
from zuul_k8s.render import render

pytestmark = [pytest.mark.cluster]

# The variants of tests/core/test_render.py that carry issue 13's keys, and the default.
ADMITTED = ("default", "site-mounts-env", "spread-zones-statefulset", "networkpolicy-custom")
DRY_RUN = {"dryRun": "All", "fieldValidation": "Strict"}


@pytest.fixture(scope="module")
def api(k8s: fixtures.Cluster) -> Cluster:
    return Cluster.connect(k8s.kubeconfig)


@pytest.fixture
def namespace_of(api: Cluster) -> Iterator[Any]:
    """Creates (for real) the rendered Namespace under a fresh name; deletes it after."""
    made: list[str] = []

    def create(objects: list[dict[str, Any]]) -> str:
        ns = next(o for o in objects if o["kind"] == "Namespace")
        api.request("POST", "/api/v1/namespaces", body=ns)
        made.append(ns["metadata"]["name"])
        return str(ns["metadata"]["name"])

    yield create
    for name in made:
        api.request("DELETE", f"/api/v1/namespaces/{name}")


def _rendered(variant: str) -> list[dict[str, Any]]:
    sections = copy.deepcopy(VARIANTS[variant])
    sections["namespace"] = {"name": f"zuul-i13-{uuid.uuid4().hex[:6]}"}
    return render(config(**sections))


@pytest.mark.parametrize("variant", ADMITTED)
def test_the_api_server_admits_every_object_and_keeps_the_policy_as_rendered(
        api: Cluster, namespace_of: Any, variant: str) -> None:
    objects = _rendered(variant)
    namespace = namespace_of(objects)
    api.warnings.clear()
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        stored = api.request("POST", resource_of(obj).path(namespace), query=DRY_RUN, body=obj)
        assert stored["metadata"]["name"] == obj["metadata"]["name"]
        if obj["kind"] == "NetworkPolicy":
            # Nothing dropped or rewritten: the rules the kit reasons about are the ones enforced.
            assert stored["spec"] == obj["spec"]
    assert api.warnings == []  # no "would violate PodSecurity", no unknown field


def test_the_api_server_refuses_a_metadata_exception_of_the_other_family(
        api: Cluster, namespace_of: Any) -> None:
    """Why the kit writes one ipBlock per family: an IPv6 exception in 0.0.0.0/0 is refused."""
    objects = _rendered("default")
    namespace = namespace_of(objects)
    policy = copy.deepcopy(next(o for o in objects if o["kind"] == "NetworkPolicy"))
    policy["spec"]["egress"][1]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                      "except": ["169.254.169.254/32", "fd00:ec2::254/128"]}}]
    with pytest.raises(ApiError) as caught:
        api.request("POST", resource_of(policy).path(namespace), query=DRY_RUN, body=policy)
    assert caught.value.status == 422
    assert "except" in str(caught.value.causes)

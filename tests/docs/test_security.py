"""docs/security.md states the NetworkPolicy and the contract rules the code has: read back."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs.markdown import doc, table
from zuul_k8s import isolation, networkpolicy, schemas
from zuul_k8s.validate import contract

TEXT = doc("security.md")
POLICY = schemas.load("config.schema.json")["properties"]["networkPolicy"]


def test_every_contract_rule_named_exists() -> None:
    named = set(re.findall(r"`contract/([A-Za-z0-9]+)`", TEXT))
    assert named >= {"networkPolicy", "metadataReachable", "hostPath", "hostNamespace", "mountPropagation", "selinux", "apparmor"}
    sources = "".join(Path(m.__file__).read_text(encoding="utf-8") for m in (contract, isolation))
    assert all(f'"{rule}"' in sources for rule in named), named


def test_the_policy_table_names_real_keys_and_the_real_defaults() -> None:
    keys = {key for row in table(TEXT, "direction") for key in re.findall(r"`networkPolicy\.(\w+)`", row[2])}
    assert keys == {"fingerFrom", "metricsFrom", "denyApiServer", "denyEgress"}
    assert keys <= set(POLICY["properties"])
    rows = " ".join(" ".join(row) for row in table(TEXT, "direction"))
    for cidr in networkpolicy.METADATA_CIDRS:
        assert cidr in rows
    finger = POLICY["properties"]["fingerFrom"]["default"][0]["podSelector"]["matchLabels"]
    metrics = POLICY["properties"]["metricsFrom"]["default"][0]
    for key, value in [*finger.items(), *metrics["podSelector"]["matchLabels"].items()]:
        assert f"`{key}: {value}`" in rows
    assert f"`{metrics['namespaceSelector']['matchLabels']['kubernetes.io/metadata.name']}`" in rows

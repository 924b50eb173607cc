"""docs/requirements.md states the versions and permissions the code enforces: each table is read
back and compared with the code's own tables, so a change to either shows up here."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest

from tests.docs.markdown import doc, table
from tests.tools import REPO
from zuul_k8s import isolation, schemas
from zuul_k8s.cluster import preflight
from zuul_k8s.podsecurity import registry
from zuul_k8s.render import namespace_labels
from zuul_k8s.selftest import probe

TEXT = doc("requirements.md")
SEVERITY_WORD = {None: "ok", "error": "error", "warning": "warning"}


def node_facts() -> ModuleType:
    """The node playbook's detection module (an Ansible module; its tables are plain Python)."""
    path = REPO / "zuul_k8s" / "playbooks" / "library" / "zuul_node_facts.py"
    spec = importlib.util.spec_from_file_location("docs_zuul_node_facts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def minors(cell: str) -> range:
    """`1.25-1.29` (an en dash in the doc) or `1.30` -> the minor versions it covers."""
    ends = [version(v)[1] for v in re.split(r"\s*[\u2013-]\s*", cell)]
    return range(ends[0], ends[-1] + 1)


def supported_minors() -> set[int]:
    pattern = schemas.load("config.schema.json")["properties"]["kubernetes"]["properties"]["version"]["pattern"]
    return {m for m in range(100) if re.fullmatch(pattern, f"1.{m}")}


KUBERNETES = table(TEXT, "Kubernetes")


def test_the_kubernetes_table_covers_exactly_the_supported_versions() -> None:
    covered = [m for row in KUBERNETES for m in minors(row[0])]
    assert sorted(covered) == sorted(supported_minors())
    assert len(covered) == len(set(covered)), "a version is in two rows"


@pytest.mark.parametrize("row", KUBERNETES, ids=lambda row: row[0].replace("\u2013", "-"))
def test_version_gate_and_namespace_labels_per_row(row: list[str]) -> None:
    said = row[3].split(":")[0]
    enforce = re.search(r"enforce `(\w+)`", row[4])
    assert enforce, row
    for minor in minors(row[0]):
        gate = isolation.version_gate(minor).severity
        assert said == SEVERITY_WORD[gate.value if gate else None], (minor, row)
        labels = namespace_labels("baseline", minor)
        assert labels["pod-security.kubernetes.io/enforce"] == enforce.group(1), (minor, row)
        assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "baseline"
    if enforce.group(1) != "baseline":
        assert "warn and audit `baseline`" in row[4]


def test_baseline_admits_unmasked_proc_from_the_codes_version() -> None:
    said = re.findall(r"from policy version v1\.(\d+)", TEXT)
    assert said and {int(m) for m in said} == {isolation.BASELINE_ADMITS_UNMASKED_FROM}


def test_container_engine_t_version() -> None:
    first = next(minor for minor, types in registry.SELINUX_TYPES_ADDED if "container_engine_t" in types)
    said = re.findall(r"container_engine_t`[^.]*?policy v1\.(\d+)", TEXT)
    assert said and {int(m) for m in said} == {first}


def test_node_minimums_match_preflight_the_node_playbook_and_the_probe() -> None:
    facts = node_facts()
    playbook = {name: minimum for name, _, _, minimum, _ in facts.RUNTIMES}
    # The three places that judge a node agree with each other ...
    assert preflight.MIN_KERNEL == facts.MIN_KERNEL == probe.MIN_KERNEL
    assert {k: playbook[k] for k in ("containerd", "cri-o")} == preflight.RUNTIME_MINIMUMS
    # ... and with the doc.
    documented = {row[0]: version(row[1]) for row in table(TEXT, "component")}
    assert documented == {
        "Linux kernel": preflight.MIN_KERNEL,
        "containerd": playbook["containerd"],
        "CRI-O": playbook["cri-o"],
        "runc": playbook["runc"],
        "crun": playbook["crun"],
    }


def test_image_minimums_match_the_probe() -> None:
    documented = {row[0]: version(row[1]) for row in table(TEXT, "in the image")}
    assert documented == {"bubblewrap": probe.MIN_BWRAP}


def test_kubelet_id_range_example_matches_the_playbook() -> None:
    facts = node_facts()
    max_pods = schemas.load("node-vars.schema.json")["properties"]["zuul_k8s_kubelet_max_pods"]["default"]
    assert f"kubelet:{facts.IDS_PER_POD}:{facts.IDS_PER_POD * max_pods}" in TEXT
    assert f"for the default {max_pods} pods" in TEXT


def test_seccomp_path_is_the_playbooks_default() -> None:
    default = schemas.load("node-vars.schema.json")["properties"]["zuul_k8s_seccomp_profile_path"]["default"]
    assert f"`{default}`" in TEXT


def test_permissions_table_is_what_preflight_checks() -> None:
    documented = [(verb, "" if group == "core" else group, resource, scope == "namespace")
                  for verb, group, resource, scope in table(TEXT, "verb")]
    assert documented == list(preflight.REQUIRED_ACCESS)

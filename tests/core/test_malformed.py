"""Manifests of any shape: every engine answers with findings or a clear message, never a traceback."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config, zuul_k8s
from zuul_k8s import yamlio
from zuul_k8s.errors import UserError
from zuul_k8s.findings import Severity
from zuul_k8s.render import render
from zuul_k8s.validate import Target, validate

MALFORMED = Path(__file__).parent / "manifests" / "malformed"
CORPUS = sorted(MALFORMED.glob("*.yaml"))
MAX_LINE = 400  # a finding is one readable line, whatever the input holds


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_manifest_gives_findings_not_a_traceback(path: Path) -> None:
    result = zuul_k8s("validate", "-f", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "error: " in result.stdout and "fix: " in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= MAX_LINE


def test_wrong_shapes_are_openapi_errors_at_their_path() -> None:
    text = (MALFORMED / "security-context-shapes.yaml").read_text()
    found = {(f.source, f.rule, f.path) for f in validate(yamlio.parse_documents(text, "x"), Target(35, "baseline"))}
    c0 = "spec.template.spec.containers[0]"
    assert ("openapi", "key", "metadata.labels") in found
    labels_fixed = text.replace("{1: x, null: y}", "{a: b}")
    found = {(f.source, f.rule, f.path) for f in validate(yamlio.parse_documents(labels_fixed, "x"),
                                                          Target(35, "baseline"))}
    assert {
        ("openapi", "type", "spec.selector.matchLabels"),
        ("openapi", "type", "spec.template.spec.securityContext"),
        ("openapi", "type", f"{c0}.securityContext.capabilities.add"),
        ("openapi", "type", f"{c0}.securityContext.seccompProfile.type"),
        ("podsecurity", "notEvaluated", "spec.selector.matchLabels"),
    } <= found


def test_huge_values_are_cut_short_in_messages() -> None:
    docs = yamlio.load_documents(str(MALFORMED / "huge-value.yaml"))
    findings = validate(docs, Target(35, "baseline"))
    assert findings and all(len(f.message) <= 300 for f in findings)
    assert any("..." in f.message for f in findings)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*path, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _paths(sub, (*path, index))


def _replaced(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _wrong_shapes(value: Any) -> list[Any]:
    """Values of another shape than `value`: none is valid where `value` is."""
    if isinstance(value, dict):
        return [["x"], "x"]
    if isinstance(value, list):
        return [{"x": [1]}, "x"]
    return [[[1]], {"x": [1]}]


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def test_every_field_of_a_rendered_object_in_every_wrong_shape() -> None:
    """Each field of each rendered object replaced by a value of another shape, one at a time."""
    objects = render(config(workload={"kind": "StatefulSet"}, state={"type": "pvc"}))
    cases = 0
    for index, obj in enumerate(objects):
        for path in _paths(obj):
            if not path:
                continue
            for wrong in _wrong_shapes(_at(obj, path)):
                broken = [*objects[:index], _replaced(obj, path, wrong), *objects[index + 1:]]
                findings = validate(broken, Target(35, "baseline"))  # must not raise
                assert any(f.severity is Severity.ERROR for f in findings), (obj["kind"], path, wrong)
                cases += 1
    assert cases > 300


def test_list_items_of_any_shape_and_non_string_keys(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [1, "x", [2]]})
                    + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {1: x}\n")
    result = zuul_k8s("validate", "-f", str(path))
    assert result.returncode == 1, result.stderr
    assert 'ConfigMap/c: data: key 1 (int) is not a string' in result.stdout
    assert 'fix: quote the key: "1"' in result.stdout


# A manifest that is small as text, with only 62 aliases, and 2**31 nodes once they
# are expanded: an implementation that expands (or walks) it does not finish.
MANIFEST_BOMB = (
    "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: b.example.org}\n"
    "spec:\n  group: example.org\n  names: {kind: B, plural: bs}\n  scope: Namespaced\n"
    "  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n"
    "        type: object\n        x-l0: &l0 {type: string}\n"
    + "".join(f"        x-l{i}: &l{i} {{type: object, properties: {{a: *l{i - 1}, b: *l{i - 1}}}}}\n"
              for i in range(1, 32))
    + "        properties: {top: *l31}\n"
)


def test_alias_bomb_manifest_is_refused_without_expanding() -> None:
    result = zuul_k8s("validate", "-f", "-", stdin=MANIFEST_BOMB)
    assert result.returncode == 2
    assert result.stderr == ("error: -: its YAML aliases expand to more than 100000 extra nodes (document at "
                             "line 1); write the repeated parts out: a document built from nested aliases "
                             "can exhaust memory and time\n")


def _aliased(uses: int) -> str:
    """An anchored list of 1000 nodes, then `uses` aliases of it: each adds 1000 nodes once expanded."""
    return "base: &base [" + ", ".join(["x"] * 999) + "]\n" + "".join(f"r{i}: *base\n" for i in range(uses))


def test_alias_cap_counts_the_nodes_aliases_add() -> None:
    assert len(yamlio.parse_documents(_aliased(90), "ok.yaml")[0]) == 91  # 90,000 extra nodes
    with pytest.raises(UserError):
        yamlio.parse_documents(_aliased(101), "over.yaml")  # 101,000
    plain = "items:\n" + "".join(f"- {{a: {i}}}\n" for i in range(3000))  # no alias, nothing extra
    assert len(yamlio.parse_documents(plain, "plain.yaml")[0]["items"]) == 3000


def test_expanded_size_counts_a_bomb_without_walking_it() -> None:
    with pytest.raises(UserError) as caught:
        yamlio.parse_documents(MANIFEST_BOMB, "bomb.yaml")
    assert str(caught.value).startswith("bomb.yaml: its YAML aliases expand to more than 100000")

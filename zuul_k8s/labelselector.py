"""Does a Kubernetes label selector select these labels? As the API machinery reads it.

The contract asks whether a NetworkPolicy fences the executor pods of any
manifest; selectors come from other people's files, so any shape is read
without crashing (a malformed selector selects nothing; OpenAPI reports it).
Semantics: k8s.io/apimachinery, pkg/apis/meta/v1 LabelSelector (matchLabels
and matchExpressions are ANDed; an empty selector selects everything).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zuul_k8s.workloads import as_dict, as_list, string_map

# operator -> (does the expression hold for this value, or None when the label is absent?)
OPERATORS: dict[str, Callable[[str | None, list[Any]], bool]] = {
    "In": lambda value, values: value is not None and value in values,
    "NotIn": lambda value, values: value is None or value not in values,
    "Exists": lambda value, values: value is not None,
    "DoesNotExist": lambda value, values: value is None,
}


def selects(selector: Any, labels: dict[str, str]) -> bool:
    if not isinstance(selector, dict):
        return False
    if any(labels.get(k) != v for k, v in string_map(selector.get("matchLabels")).items()):
        return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_dict(expression)
        holds = OPERATORS.get(str(expression.get("operator")))
        key = expression.get("key")
        if holds is None or not isinstance(key, str):
            return False
        if not holds(labels.get(key), as_list(expression.get("values"))):
            return False
    return True

"""Server-side apply as the API server does it, reduced to what the kit uses.

An object is a set of leaf fields; each field manager owns some of them
(metadata.managedFields, fieldsV1). Applying sets the manager's fields,
removes the fields it owned before and no longer applies (unless someone else
owns them too), and refuses with a conflict when another manager owns a field
with a different value, unless forced. Lists of mappings with a `name` are
keyed by it (containers, env, volumes, ports); other lists are atomic.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[Any, ...]  # str for a mapping key, ("k", name) for a keyed list item
IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
SERVER_OWNED = ("status",)
META_SKIP = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
             "deletionTimestamp", "deletionGracePeriodSeconds")


def _keyed(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in value))


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            if prefix == () and key in SERVER_OWNED:
                continue
            if prefix == ("metadata",) and key in META_SKIP:
                continue
            out.update(leaves(value, (*prefix, key)))
    elif _keyed(obj):
        for item in obj:
            out.update(leaves(item, (*prefix, ("k", item["name"]))))
    else:
        out[prefix] = obj
    return {p: v for p, v in out.items() if p not in IDENTITY}


def get(obj: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, tuple):
            obj = next((i for i in obj or [] if isinstance(i, dict) and i.get("name") == part[1]),
                       None)
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
        if obj is None:
            return None
    return obj


def put(obj: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = obj
    for index, part in enumerate(path):
        last = index == len(path) - 1
        nxt = path[index + 1] if not last else None
        if isinstance(part, tuple):
            item = next((i for i in node if i.get("name") == part[1]), None)
            if item is None:
                item = {"name": part[1]}
                node.append(item)
            if last:
                item.clear()
                item.update(copy.deepcopy(value))
            node = item
        else:
            if last:
                node[part] = copy.deepcopy(value)
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = [] if isinstance(nxt, tuple) else {}
                node = node[part]


def remove(obj: dict[str, Any], path: Path) -> None:
    parent = get(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if isinstance(last, tuple) and isinstance(parent, list):
        parent[:] = [i for i in parent if i.get("name") != last[1]]
    elif isinstance(parent, dict):
        parent.pop(last, None)


def _prune_empty(obj: Any, path: Path) -> None:
    """Drop mappings/lists left empty by removals (they were not applied as empty)."""
    for cut in range(len(path) - 1, 0, -1):
        node = get(obj, path[:cut])
        if node in ({}, []):
            remove(obj, path[:cut])
        else:
            break


# --- managedFields in the API's fieldsV1 form -----------------------------------------

def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=repr):
        node = tree
        for part in path:
            key = (f"k:{json.dumps({'name': part[1]}, separators=(',', ':'))}"
                   if isinstance(part, tuple) else f"f:{part}")
            node = node.setdefault(key, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            continue
        part: Any = ("k", json.loads(key[2:])["name"]) if key.startswith("k:") else key[2:]
        if sub:
            out |= from_fields_v1(sub, (*prefix, part))
        else:
            out.add((*prefix, part))
    return out


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], set[Path]]:
    """(manager, operation) -> owned leaf paths."""
    out: dict[tuple[str, str], set[Path]] = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        key = (entry.get("manager", ""), entry.get("operation", "Update"))
        out.setdefault(key, set()).update(from_fields_v1(entry.get("fieldsV1") or {}))
    return out


def _set_owners(obj: dict[str, Any], table: dict[tuple[str, str], set[Path]], now: str) -> None:
    obj.setdefault("metadata", {})["managedFields"] = [
        {"manager": manager, "operation": operation, "apiVersion": obj.get("apiVersion"),
         "time": now, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
        for (manager, operation), paths in sorted(table.items()) if paths
    ]


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[name={part[1]}]" if isinstance(part, tuple) else f".{part}"
    return out


class Conflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]]) -> None:
        self.conflicts = conflicts
        super().__init__(conflicts)


def apply(current: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool,
          now: str) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `current` (None: create)."""
    new_fields = leaves(applied)
    if current is None:
        result = copy.deepcopy(applied)
        result.setdefault("metadata", {}).pop("managedFields", None)
        _set_owners(result, {(manager, "Apply"): set(new_fields)}, now)
        return result
    table = owners(current)
    conflicts = []
    for (other, _operation), paths in table.items():
        if other == manager:
            continue
        for path in paths & set(new_fields):
            if get(current, path) != new_fields[path]:
                conflicts.append((other, path))
    if conflicts and not force:
        raise Conflict(sorted(conflicts, key=repr))
    result = copy.deepcopy(current)
    mine = table.pop((manager, "Apply"), set())
    for key in table:
        if force:
            table[key] -= {p for _, p in conflicts}
    still_owned = set().union(*table.values()) if table else set()
    for path in mine - set(new_fields) - still_owned:
        remove(result, path)
        _prune_empty(result, path)
    for path, value in new_fields.items():
        put(result, path, value)
    table[(manager, "Apply")] = set(new_fields)
    _set_owners(result, table, now)
    return result


def update(current: dict[str, Any] | None, result: dict[str, Any], manager: str,
           changed: dict[str, Any], now: str) -> None:
    """Record an Update (create, merge patch) by `manager` of the fields in `changed`."""
    table = owners(current) if current else {}
    paths = set(leaves(changed))
    for key in table:
        table[key] -= paths
    table.setdefault((manager, "Update"), set()).update(paths)
    _set_owners(result, table, now)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out

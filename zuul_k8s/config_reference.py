"""The config reference in README.md, generated from the schema so it cannot drift.

`python -m zuul_k8s.config_reference` prints it; `--write README.md` replaces
the part of the README between the markers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from zuul_k8s import schemas

START = "<!-- config-reference:start (generated: python -m zuul_k8s.config_reference --write README.md) -->"
END = "<!-- config-reference:end -->"


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v) if v is None else v}`" for v in node["enum"])
    kind = node.get("type", "any")
    return " \\| ".join(kind) if isinstance(kind, list) else str(kind)


def _is(node: dict[str, Any], kind: str) -> bool:
    types = node.get("type")
    return kind in types if isinstance(types, list) else types == kind


def _rows(node: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        nested = _is(sub, "object") and "properties" in sub
        # Objects show their default too: a partly given object keeps its other keys' defaults.
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else ""
        required = " (required)" if key in node.get("required", []) else ""
        description = sub.get("description", "").replace("|", "\\|")
        rows.append(f"| `{path}`{required} | {_type(sub)} | {default} | {description} |")
        if nested:
            rows += _rows(sub, path)
        elif _is(sub, "array") and "properties" in sub.get("items", {}):
            rows += _rows(sub["items"], f"{path}[]")
    return rows


def markdown() -> str:
    schema = schemas.load("config.schema.json")
    lines = [START, "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines += _rows(schema, "")
    lines += ["", END]
    return "\n".join(lines)


def replace_section(text: str, section: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"marker {START!r} not found")
    return head + section + tail


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_section(path.read_text(encoding="utf-8"), markdown()), encoding="utf-8")
        return 0
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

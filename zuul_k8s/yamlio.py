"""Reading untrusted YAML safely, and writing it deterministically.

Config files and manifests come from users, so reading them must fail with a
message, not a traceback or an exhausted machine: aliases are capped (a
"billion laughs" document expands exponentially when walked), files are size
capped, duplicate keys are refused (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from zuul_k8s.errors import Problem, UserError

MAX_BYTES = 8 * 1024 * 1024
MAX_ALIASES = 64
STDIN = "-"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and alias floods."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} YAML aliases (line {mark.line + 1}); "
                    "expand them: a document built from nested aliases can exhaust memory"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, (list, dict)):
                continue  # let SafeLoader report unhashable keys
            if key in seen:
                raise yaml.YAMLError(
                    f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); keep only one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_text(source: str) -> str:
    """The text of a file or of stdin (`-`), as UTF-8, size capped."""
    try:
        if source == STDIN:
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UserError(Problem(source, "", "no such file")) from None
    except IsADirectoryError:
        raise UserError(Problem(source, "", "is a directory, not a file")) from None
    except OSError as exc:
        raise UserError(Problem(source, "", f"cannot read: {exc.strerror}")) from None
    if len(data) > MAX_BYTES:
        raise UserError(Problem(source, "", f"larger than {MAX_BYTES // 1024 // 1024} MiB"))
    if b"\0" in data:
        raise UserError(Problem(source, "", "is a binary file, not YAML"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            Problem(source, "", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")
        ) from None


def parse_documents(text: str, source: str) -> list[Any]:
    """Every non-empty document of a (multi-document) YAML text."""
    try:
        loader = _StrictLoader(text)
        try:
            docs = []
            while loader.check_data():
                docs.append(loader.get_data())
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise UserError(Problem(source, "", f"not valid YAML: {_yaml_reason(exc)}")) from None
    return [doc for doc in docs if doc is not None]


def load_documents(source: str) -> list[Any]:
    return parse_documents(read_text(source), source)


def load_one(source: str) -> Any:
    """A single-document YAML file; None when it is empty."""
    docs = load_documents(source)
    if len(docs) > 1:
        raise UserError(Problem(source, "", "holds several YAML documents; expected one"))
    return docs[0] if docs else None


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc)


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, keys in the order the renderer built them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)


def dump_all(objs: list[Any]) -> str:
    return "".join("---\n" + dump(obj) for obj in objs)

"""Reading untrusted YAML safely, and writing it deterministically.

Config files and manifests come from users, so reading them must fail with a
message, not a traceback or an exhausted machine: alias expansion is capped
by the nodes it adds once expanded (a "billion laughs" document is small, but
every consumer that walks it, like a schema validator, walks 2**N nodes),
recursive aliases and very deep nesting are refused, files are size capped,
duplicate keys are refused (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from zuul_k8s.errors import Problem, UserError

MAX_BYTES = 8 * 1024 * 1024
MAX_ALIAS_NODES = 100_000  # nodes aliases may add once expanded, per document
STDIN = "-"


class InputRefused(yaml.YAMLError):
    """Valid YAML the kit will not read: the message is the whole explanation."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded, counted without expanding.

    Each distinct node is visited once (sizes are memoised), so a bomb costs
    what its text costs; stops as soon as the count passes `limit`.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            sizes[id(node)] = size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > limit:
                return size
            continue
        if id(child) in on_path:
            raise InputRefused(
                f"holds a recursive YAML alias (line {child.start_mark.line + 1}): a node that "
                "contains itself; Kubernetes objects and configs are trees"
            )
        if id(child) not in sizes:
            on_path.add(id(child))
            stack.append((child, iter(_children(child))))
    return sizes[id(root)]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._composed = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if not self.check_event(yaml.AliasEvent):
            self._composed += 1
        return super().compose_node(parent, index)

    def construct_document(self, node: yaml.Node) -> Any:
        limit = self._composed + MAX_ALIAS_NODES
        if expanded_size(node, limit) > limit:
            raise InputRefused(
                f"its YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes (document at "
                f"line {node.start_mark.line + 1}); write the repeated parts out: a document built "
                "from nested aliases can exhaust memory and time"
            )
        self._composed = 0
        return super().construct_document(node)

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
    except InputRefused as exc:
        raise UserError(Problem(source, "", str(exc))) from None
    except yaml.YAMLError as exc:
        raise UserError(Problem(source, "", f"not valid YAML: {_yaml_reason(exc)}")) from None
    except RecursionError:
        raise UserError(Problem(source, "", "nests too deeply to read; flatten it")) from None
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

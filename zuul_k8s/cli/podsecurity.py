"""`zuul-k8s podsecurity check`: would Pod Security Admission admit these manifests?

Offline and before anything is applied: each pod-making object is judged as a
namespace enforcing the given level and policy version would judge it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, Problem, UserError, dotted
from zuul_k8s.podsecurity.versions import BASELINE, LATEST, LEVELS, PolicyError, parse_version

# Kept light: the engine is imported inside run(), not when the CLI starts.


def _version(text: str) -> str:
    try:
        parse_version(text)
    except PolicyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "podsecurity",
        help="Pod Security Admission, offline: would a namespace admit these manifests?",
        description="Evaluate Pod Security Standards offline, exactly as Pod Security Admission "
        "would for a namespace enforcing a level and policy version.",
    )
    actions = parser.add_subparsers(dest="podsecurity_action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="judge the pods of manifests (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, "
        "ReplicationController, Job, CronJob, PodTemplate)",
        description="Judge every pod-making object of multi-document YAML manifests. Exit 0 when "
        "all are allowed, 1 when any is denied, 2 for input that is not Kubernetes objects. "
        "Objects that make no pods are reported as skipped.",
    )
    check.add_argument(
        "--level", choices=LEVELS, default=BASELINE,
        help="the namespace's pod-security.kubernetes.io/enforce level (default: baseline)",
    )
    check.add_argument(
        "--version", dest="policy_version", metavar="{v1.N,latest}", type=_version,
        default=LATEST,
        help="the namespace's pod-security.kubernetes.io/enforce-version (default: latest)",
    )
    check.add_argument("-o", "--output", choices=("text", "json"), default="text",
                       help="output format (default: text)")
    check.add_argument("files", nargs="+", metavar="FILE", help="manifest file, or - for stdin")
    check.set_defaults(func=run)


@dataclass(frozen=True)
class Located:
    """One object and where it came from."""

    file: str
    index: int  # the document's number in the file, from 1
    item: int | None  # its position in a List's items, else None
    obj: dict[str, Any]

    @property
    def where(self) -> str:
        return f"doc{self.index}" + ("" if self.item is None else f".items[{self.item}]")


def _shape_problem(obj: Any) -> str | None:
    """Why a document is not a Kubernetes object this command can judge, if it is not."""
    from zuul_k8s.workloads import POD_TEMPLATE_PATHS

    if not isinstance(obj, dict):
        return (f"not a Kubernetes object: a YAML {type(obj).__name__} where a mapping with "
                "apiVersion and kind was expected")
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            return (f"not a Kubernetes object: no {field} (every object needs apiVersion and "
                    "kind, e.g. apiVersion: apps/v1, kind: Deployment)")
    path = POD_TEMPLATE_PATHS.get(obj["kind"])
    if path is None:
        return None
    node: Any = obj
    for depth, key in enumerate((*path, "spec")):
        node = node.get(key)
        if not isinstance(node, dict):
            where = dotted((*path, "spec")[: depth + 1])
            got = "missing" if node is None else f"a {type(node).__name__}"
            return f"{where}: {got}, but a {obj['kind']} needs its pod spec here as a mapping"
    return None


def _objects(source: str, docs: list[Any], problems: list[Problem]) -> list[Located]:
    found = []
    if not docs:
        problems.append(Problem(source, "", "holds no YAML documents; expected Kubernetes objects"))
    for index, doc in enumerate(docs, 1):
        is_list = isinstance(doc, dict) and doc.get("kind") == "List"
        list_items = doc.get("items") if is_list else None
        if isinstance(list_items, list):
            items = [Located(source, index, n, item) for n, item in enumerate(list_items)]
        else:
            items = [Located(source, index, None, doc)]
        for located in items:
            problem = _shape_problem(located.obj)
            if problem:
                problems.append(Problem(source, located.where, problem))
            else:
                found.append(located)
    return found


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return str(metadata.get("name") or metadata.get("generateName") or "(unnamed)")


def run(args: argparse.Namespace) -> int:
    from zuul_k8s.podsecurity import evaluate_object
    from zuul_k8s.yamlio import STDIN, load_documents

    if args.files.count(STDIN) > 1:
        raise UserError(Problem(STDIN, "", "stdin can be read only once; name it once"))
    problems: list[Problem] = []
    located: list[Located] = []
    for source in args.files:
        try:
            docs = load_documents(source)
        except UserError as exc:
            problems += exc.problems
            continue
        located += _objects(source, docs, problems)
    if problems:
        raise UserError(problems)

    results = []
    for entry in located:
        verdict = evaluate_object(entry.obj, args.level, args.policy_version)
        results.append((entry, verdict))
    if args.output == "json":
        _print_json(results)
    else:
        _print_text(results, args.level, args.policy_version)
    denied = any(verdict is not None and not verdict.allowed for _, verdict in results)
    return EXIT_FAILED if denied else EXIT_OK


def _print_text(results: list[tuple[Located, Any]], level: str, version: str) -> None:
    counts = {"ALLOWED": 0, "DENIED": 0, "SKIPPED": 0}
    rules = ""
    for entry, verdict in results:
        label = f"{entry.obj['kind']}/{_name(entry.obj)}"
        if verdict is None:
            status, line = "SKIPPED", f"SKIPPED {label}: makes no pods"
        elif verdict.allowed:
            status, line = "ALLOWED", f"ALLOWED {label}"
        else:
            denials = "; ".join(f"{d.check}: {d}" for d in verdict.denials)
            status, line = "DENIED", f"DENIED {label}: {denials}"
        if verdict is not None:
            rules = verdict.version
        counts[status] += 1
        print(line)
    policy = f"{level}:{version}" + (f" ({rules} rules)" if rules and rules != version else "")
    print(
        f"{counts['ALLOWED']} allowed, {counts['DENIED']} denied, {counts['SKIPPED']} skipped "
        f"at {policy}",
        file=sys.stderr,
    )


def _print_json(results: list[tuple[Located, Any]]) -> None:
    out = [
        {
            "file": entry.file,
            "index": entry.index,
            "item": entry.item,
            "kind": entry.obj["kind"],
            "name": _name(entry.obj),
            "skipped": verdict is None,
            "allowed": None if verdict is None else verdict.allowed,
            "denials": [] if verdict is None else [
                {"check": d.check, "reason": d.reason, "detail": d.detail, "fields": list(d.fields)}
                for d in verdict.denials
            ],
        }
        for entry, verdict in results
    ]
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")

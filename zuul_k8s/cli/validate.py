"""`zuul-k8s validate`: findings for a config (rendered first) or any manifests."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from zuul_k8s.cli import common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, Problem, UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "validate", help="check a config or manifests: OpenAPI schema, isolation contract, Pod Security",
        description="Check the kit's config (rendered first) or any manifests (multi-document YAML, "
        "e.g. kustomize output or another deployer's) against the strict OpenAPI schema of the "
        "target Kubernetes version, the kit's isolation contract and Pod Security Standards. "
        "Exit 1 when any error is found.",
    )
    source = parser.add_mutually_exclusive_group()
    common.add_config(source)  # type: ignore[arg-type]
    source.add_argument("-f", "--filename", metavar="FILE", nargs="+", action="extend",
                        help="manifest files to check (`-f a.yaml b.yaml` or `-f a.yaml -f b.yaml`; "
                        "`-` reads stdin)")
    common.add_zuul_conf(parser)
    parser.add_argument("--target-version", metavar="1.N",
                        help="with -f: target Kubernetes minor version (default 1.35)")
    parser.add_argument("--level", choices=("privileged", "baseline", "restricted"),
                        help="with -f: Pod Security level where no Namespace object says (default baseline)")
    common.add_output_format(parser)
    parser.set_defaults(func=run)


def load_manifests(files: list[str]) -> list[dict[str, Any]]:
    from zuul_k8s import yamlio

    objects = []
    for source in files:
        for index, doc in enumerate(yamlio.load_documents(source)):
            if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
                raise UserError(Problem(source, f"document {index + 1}",
                                        "is not a Kubernetes object (a mapping with apiVersion and kind)"))
            if doc["kind"] == "List" and isinstance(doc.get("items"), list):
                objects += [item for item in doc["items"] if isinstance(item, dict)]
            else:
                objects.append(doc)
    return objects


def _minor(version: str) -> int:
    from zuul_k8s.validate.openapi import supported_minors

    supported = supported_minors()
    text = version.removeprefix("v")
    if text.startswith("1.") and text[2:].isdigit() and int(text[2:]) in supported:
        return int(text[2:])
    raise UserError(Problem("--target-version", "", f"{version!r} is not supported; use "
                            f"1.{supported[0]} to 1.{supported[-1]}"))


def run(args: argparse.Namespace) -> int:
    from zuul_k8s.config import load_config
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate

    data, zuul_conf = common.zuul_conf_from(args)
    if args.filename:
        objects = load_manifests(args.filename)
        target = common.target_of(load_config(None))
        if args.target_version:
            target = replace(target, minor=_minor(args.target_version))
        if args.level:
            target = replace(target, level=args.level)
    else:
        if args.target_version or args.level:
            raise UserError("--target-version and --level go with -f; a config names its own "
                            "(kubernetes.version, kubernetes.podSecurityLevel)")
        config = load_config(args.config)
        objects = render(config, data)
        target = common.target_of(config)
    findings = validate(objects, target, zuul_conf)
    common.note_unchecked(zuul_conf, objects)
    common.print_findings(findings, args.output)
    return EXIT_FAILED if common.blocking(findings) else EXIT_OK

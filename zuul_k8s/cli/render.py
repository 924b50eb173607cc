"""`zuul-k8s render`: validated executor manifests, to stdout or as a kustomize base."""

from __future__ import annotations

import argparse
import sys

from zuul_k8s.cli import common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "render", help="render validated zuul-executor manifests",
        description="Render the executor's objects from the config, validate them, and write them "
        "only when they pass: as multi-document YAML to stdout (`-o -`, the default) or as one file "
        "per object plus kustomization.yaml into a directory.",
    )
    common.add_config(parser)
    common.add_zuul_conf(parser)
    parser.add_argument("-o", "--output", metavar="DIR|-", default="-",
                        help="directory for a kustomize base, or - for stdout (default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zuul_k8s import manifests, yamlio
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate

    config = common.config_from(args)
    data, zuul_conf = common.zuul_conf_from(args)
    objects = render(config, data)
    findings = validate(objects, common.target_of(config), zuul_conf)
    common.note_unchecked(zuul_conf, objects)
    errors = common.blocking(findings)
    if findings:
        common.print_findings(findings, "text", sys.stderr)
    if errors:
        print(f"refusing to write: {len(errors)} error(s) in the rendered objects", file=sys.stderr)
        return EXIT_FAILED
    if args.output == "-":
        sys.stdout.write(yamlio.dump_all(objects))
    else:
        written = manifests.write_base(objects, args.output)
        print(f"wrote {len(written)} files to {args.output}: {', '.join(written)}", file=sys.stderr)
    return EXIT_OK

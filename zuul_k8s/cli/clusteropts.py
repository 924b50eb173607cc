"""Options every cluster subcommand shares (preflight, apply, selftest, upgrade)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zuul_k8s.cli import common


def add_kubeconfig(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)")


def add_timeout(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    parser.add_argument("--timeout", type=int, default=default, metavar="SECONDS",
                        help=f"give up waiting for {what} after this long (default: {default})")


def rendered(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]] | None]:
    """(config, objects), or (config, None) after printing the blocking findings."""
    return rendered_config(common.config_from(args), args)


def rendered_config(config: Any, args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]] | None]:
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate

    objects = render(config, common.read_zuul_conf(getattr(args, "zuul_conf", None)))
    findings = validate(objects, common.target_of(config))
    errors = common.blocking(findings)
    if errors:
        common.print_findings(findings, "text", sys.stderr)
        print(f"refusing to touch the cluster: {len(errors)} error(s) in the rendered objects",
              file=sys.stderr)
        return config, None
    return config, objects


def say(line: str) -> None:
    print(line, flush=True)

"""Options and steps several subcommands share."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from zuul_k8s.errors import Problem, UserError
from zuul_k8s.findings import Finding, Severity, format_json, format_text

if TYPE_CHECKING:  # importing the config loads jsonschema: only commands that read a config pay for it
    from zuul_k8s.config import Config
    from zuul_k8s.validate.admission import Target


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", metavar="CONFIG",
        help="the kit's config file (default: the built-in example; `zuul-k8s init` writes a starter)",
    )


def add_zuul_conf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--zuul-conf", metavar="FILE",
        help="your zuul.conf: its checksum goes into a pod annotation so a change rolls the "
             "executors (its content is never rendered)",
    )


def add_output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text",
                        help="output format (default: text)")


def read_zuul_conf(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UserError(Problem(path, "", f"cannot read zuul.conf: {exc.strerror}")) from None


def config_from(args: argparse.Namespace) -> Config:
    from zuul_k8s.config import load_config

    return load_config(args.config)


def target_of(config: Config) -> Target:
    from zuul_k8s.validate.admission import Target

    return Target(minor=config.target_minor, level=config["kubernetes"]["podSecurityLevel"])


def print_findings(findings: list[Finding], output: str, stream: Any = sys.stdout) -> None:
    stream.write(format_json(findings) if output == "json" else format_text(findings))


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]

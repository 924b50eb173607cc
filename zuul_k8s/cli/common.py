"""Options and steps several subcommands share."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from zuul_k8s.findings import Finding, Severity, format_json, format_text

if TYPE_CHECKING:  # importing the config loads jsonschema: only commands that read a config pay for it
    from zuul_k8s.config import Config
    from zuul_k8s.validate.admission import Target
    from zuul_k8s.zuulconf import ZuulConf


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", metavar="CONFIG",
        help="the kit's config file (default: the built-in example; `zuul-k8s init` writes a starter)",
    )


def add_zuul_conf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--zuul-conf", metavar="FILE",
        help="your executor's zuul.conf: checked against the pod (prometheus_port, finger_port, "
             "every path it names mounted and readable, state_dir/job_dir/git_dir on the state "
             "volume; no value is ever printed), and its checksum goes into a pod annotation so a "
             "change rolls the executors (its content is never rendered)",
    )


def add_output_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text",
                        help="output format (default: text)")


def zuul_conf_from(args: argparse.Namespace) -> tuple[bytes | None, ZuulConf | None]:
    """(the bytes, for the checksum; the parsed zuul.conf) of --zuul-conf; a bad file is exit 2."""
    from zuul_k8s import zuulconf

    path = getattr(args, "zuul_conf", None)
    if path is None:
        return None, None
    return zuulconf.read(path)


UNCHECKED_NOTE = (
    "note: zuul.conf not checked (no --zuul-conf FILE): prometheus_port against the probes' port, "
    "finger_port, private_key_file, log_config, the ZooKeeper TLS files and every other path it names "
    "against the pod's mounts, state_dir/job_dir/git_dir on the state volume"
)


def note_unchecked(zuul_conf: ZuulConf | None, objects: list[dict[str, Any]]) -> None:
    """Say once, on stderr, what a run without --zuul-conf did not check (only for executor pods)."""
    from zuul_k8s.validate.zuulconf import executors

    if zuul_conf is None and executors(objects):
        print(UNCHECKED_NOTE, file=sys.stderr)


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

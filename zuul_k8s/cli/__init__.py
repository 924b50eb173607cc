"""The `zuul-k8s` command line: a thin shell over the package's pure functions.

Each subcommand lives in its own module with `register(subparsers)`; user
errors become one message per problem and exit 2, failed checks exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from zuul_k8s import __version__
from zuul_k8s.errors import EXIT_USAGE, UserError

# Subcommand modules under zuul_k8s.cli, in the order `--help` lists them.
COMMANDS = ("init", "render", "validate", "podsecurity", "nodes", "preflight", "apply", "upgrade", "selftest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="zuul-k8s",
        description="Run Zuul executors unprivileged on Kubernetes, and prove it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"zuul_k8s.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0

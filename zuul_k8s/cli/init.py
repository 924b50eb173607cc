"""`zuul-k8s init`: write a commented starter config.

Imports nothing heavy at module level: every command builds the parser, so
what this module imports, every command pays for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zuul_k8s import examples
from zuul_k8s.errors import EXIT_OK, Problem, UserError

DEFAULT_PATH = "zuul-k8s.yaml"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "init", help="write a commented starter config",
        description="Write a commented starter config (the built-in example) to PATH.",
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH,
                        help=f"where to write it (default: {DEFAULT_PATH})")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.path)
    if target.exists() and not args.force:
        raise UserError(Problem(args.path, "", "exists already; pass --force to overwrite it"))
    try:
        target.write_text(examples.CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise UserError(Problem(args.path, "", f"cannot write: {exc.strerror}")) from None
    print(f"wrote {args.path}; edit it, then: zuul-k8s validate -c {args.path}")
    return EXIT_OK

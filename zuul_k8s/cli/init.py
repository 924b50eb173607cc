"""`zuul-k8s init`: write a commented starter config, and a starter zuul.conf for its pod.

Imports nothing heavy at module level: every command builds the parser, so
what this module imports, every command pays for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zuul_k8s import examples
from zuul_k8s.errors import EXIT_OK, Problem, UserError

DEFAULT_PATH = "zuul-k8s.yaml"
ZUUL_CONF_NAME = "zuul.conf.example"  # written next to the config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "init", help="write a commented starter config and a starter zuul.conf",
        description="Write a commented starter config (the built-in example) to PATH, and next to "
        f"it {ZUUL_CONF_NAME}: the executor's part of zuul.conf, fitting the pod that config "
        "renders (replace each CHANGE-ME, then `zuul-k8s validate --zuul-conf`).",
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH,
                        help=f"where to write it (default: {DEFAULT_PATH})")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.path)
    zuul_conf = target.parent / ZUUL_CONF_NAME
    for path in (target, zuul_conf):
        if path.exists() and not args.force:
            raise UserError(Problem(str(path), "", "exists already; pass --force to overwrite it"))
    for path, source in ((target, examples.CONFIG), (zuul_conf, examples.ZUUL_CONF)):
        try:
            path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        except OSError as exc:
            raise UserError(Problem(str(path), "", f"cannot write: {exc.strerror}")) from None
    print(f"wrote {args.path} and {zuul_conf}; edit the config, save {ZUUL_CONF_NAME} as zuul.conf "
          f"with your values, then: zuul-k8s validate -c {args.path} --zuul-conf zuul.conf")
    return EXIT_OK

"""`zuul-k8s apply`: validate, server-side apply in dependency order, follow the rollout."""

from __future__ import annotations

import argparse

from zuul_k8s.cli import clusteropts, common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "apply", help="apply the executor's objects to the cluster and follow the rollout",
        description="Render and validate the objects, then server-side apply them (field manager "
        "zuul-k8s) in dependency order and wait for the executors' rollout, showing pods updated "
        "and ready out of desired. Nothing is applied when validation finds an error.",
    )
    common.add_config(parser)
    common.add_zuul_conf(parser)
    clusteropts.add_kubeconfig(parser)
    parser.add_argument("--dry-run", choices=("server",), metavar="server",
                        help="`--dry-run=server`: let the API server check every object, store none")
    parser.add_argument("--force-conflicts", action="store_true",
                        help="take over fields another field manager owns (after reading why)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the rollout")
    clusteropts.add_timeout(parser, 900, "the rollout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zuul_k8s.cluster.apply import apply_objects
    from zuul_k8s.cluster.client import Cluster
    from zuul_k8s.cluster.rollout import follow

    _, objects = clusteropts.rendered(args)
    if objects is None:
        return EXIT_FAILED
    cluster = Cluster.connect(args.kubeconfig)
    dry_run = args.dry_run == "server"
    applied = apply_objects(cluster, objects, force=args.force_conflicts, dry_run=dry_run,
                            report=lambda a: clusteropts.say(a.line(dry_run)))
    if dry_run or args.no_wait:
        return EXIT_OK
    workload = next(a.obj for a in applied if a.obj["kind"] in ("Deployment", "StatefulSet"))
    follow(cluster, workload, clusteropts.say, timeout=args.timeout)
    clusteropts.say("rollout complete")
    return EXIT_OK

"""`zuul-k8s apply`: validate, server-side apply in dependency order, follow the rollout."""

from __future__ import annotations

import argparse
import sys

from zuul_k8s.cli import clusteropts, common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, Problem, UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "apply", help="apply the executor's objects to the cluster and follow the rollout",
        description="Render and validate the objects, then server-side apply them (field manager "
        "zuul-k8s) in dependency order and wait for the executors' rollout, showing pods updated "
        "and ready out of desired, and which old executors are still draining. Nothing is "
        "applied when validation finds an error. Needs -c: it never deploys the built-in "
        "example. Refuses (exit 2) an existing namespace holding pods its new Pod Security "
        "labels deny or objects the kit would fight over, unless --force. Without --zuul-conf "
        "it keeps the zuul.conf checksum the cluster has.",
    )
    clusteropts.add_config(parser)
    common.add_zuul_conf(parser)
    clusteropts.add_kubeconfig(parser)
    parser.add_argument("--dry-run", choices=("server",), metavar="server",
                        help="`--dry-run=server`: let the API server check every object, store none")
    parser.add_argument("--force-conflicts", action="store_true",
                        help="take over fields another field manager owns (after reading why)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the rollout")
    parser.add_argument("--force", action="store_true",
                        help="take over an existing namespace although it holds pods its new "
                        "Pod Security labels deny or objects the kit would fight over (listed "
                        "first; `zuul-k8s preflight` shows them too)")
    clusteropts.add_timeout(parser, "the command may take")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from zuul_k8s.cluster import takeover
    from zuul_k8s.cluster.apply import (
        apply_objects,
        keep_zuul_conf_checksum,
        kept_line,
        workload_of,
    )
    from zuul_k8s.cluster.client import ApiError, Cluster, explain
    from zuul_k8s.cluster.preflight import target_check
    from zuul_k8s.cluster.resources import object_path
    from zuul_k8s.cluster.rollout import Deadline, default_timeout, ended, follow

    started = time.monotonic()
    clusteropts.require_config(args, "apply")
    config, objects = clusteropts.rendered(args)
    if objects is None:
        return EXIT_FAILED
    cluster = Cluster.connect(args.kubeconfig)
    planned = workload_of(objects)
    try:
        target = target_check(cluster.request("GET", "/version"), config)
        if target.blocks:
            raise UserError(Problem(config.source or "config", "kubernetes.version",
                                    f"{target.detail}; fix: {target.fix}"))
        live = cluster.get(object_path(planned))
        found = takeover.gather(cluster, config, objects)
    except ApiError as err:
        raise explain(err, cluster.server, "apply") from None
    if args.zuul_conf is None:
        kept = keep_zuul_conf_checksum(objects, live)
        if kept:
            clusteropts.say(kept_line(kept))
    if found.findings:
        refuse = found.blocks and not args.force
        for line in takeover.report(found):
            print(("" if refuse else "warning: ") + line, file=sys.stderr)
        if refuse:
            raise UserError(Problem(
                f"namespace {found.namespace}", "", f"refusing to take it over: it holds "
                f"{found.summary()}; fix: give the kit a namespace of its own (namespace.name), "
                "or move those out, or rerun with --force to relabel it and take them over"))
    dry_run = args.dry_run == "server"
    applied = apply_objects(cluster, objects, force=args.force_conflicts, dry_run=dry_run,
                            report=lambda a: clusteropts.say(a.line(dry_run)))
    for text in cluster.warnings:  # e.g. `would violate PodSecurity "baseline:v1.34": ...`
        print(f"warning: the API server says: {text}", file=sys.stderr)
    if dry_run or args.no_wait:
        return EXIT_OK
    workload = workload_of([a.obj for a in applied])
    seconds = args.timeout if args.timeout is not None else default_timeout(planned, live)
    clusteropts.say(f"waiting up to {seconds}s for the rollout"
                    + (" (--timeout)" if args.timeout is not None else
                       " (replicas x (gracefulStopSeconds + 300) + 300; --timeout to change)"))
    deadline = Deadline(seconds, started + seconds)
    clusteropts.say(ended(follow(cluster, workload, clusteropts.say, timeout=deadline)))
    return EXIT_OK

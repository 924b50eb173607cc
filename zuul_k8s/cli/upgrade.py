"""`zuul-k8s upgrade`: canary, rolling update one executor at a time, self-test after."""

from __future__ import annotations

import argparse

from zuul_k8s.cli import clusteropts, common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "upgrade", help="move the executors to a new image: canary, rolling update, self-test",
        description="Run the self-test with the new image first (on failure nothing changes), "
        "then apply the new template and follow the rolling update one executor at a time (each "
        "draining its builds within terminationGracePeriodSeconds while its successor becomes "
        "ready), then the self-test again. The state is kept on the workload: rerun the same "
        "command after an interrupt and it resumes.",
    )
    parser.add_argument("--image", required=True, help="the new executor image (tag or digest)")
    common.add_config(parser)
    common.add_zuul_conf(parser)
    clusteropts.add_kubeconfig(parser)
    parser.add_argument("--rollback-on-failure", action="store_true",
                        help="restore the previous template when the rollout or the self-test "
                        "after it fails")
    clusteropts.add_timeout(parser, 900, "the rollout")
    parser.add_argument("--selftest-timeout", type=int, default=300, metavar="SECONDS",
                        help="give up on each self-test after this long (default: 300)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zuul_k8s.cluster.client import Cluster
    from zuul_k8s.cluster.upgrade import upgrade, with_image

    config, objects = clusteropts.rendered(args)
    if objects is None:
        return EXIT_FAILED
    _, checked = clusteropts.rendered_config(with_image(config, args.image), args)
    if checked is None:
        return EXIT_FAILED
    ok = upgrade(Cluster.connect(args.kubeconfig), config, args.image,
                 rollback_on_failure=args.rollback_on_failure, timeout=args.timeout,
                 selftest_timeout=args.selftest_timeout, say=clusteropts.say,
                 zuul_conf=common.read_zuul_conf(args.zuul_conf))
    return EXIT_OK if ok else EXIT_FAILED

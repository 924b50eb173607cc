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
        "command after an interrupt and it resumes. Needs -c: it never deploys the built-in "
        "example. Old executors still draining when the wait ends are reported, not failed "
        "or rolled back.",
    )
    parser.add_argument("--image", required=True, help="the new executor image (tag or digest)")
    clusteropts.add_config(parser)
    common.add_zuul_conf(parser)
    clusteropts.add_kubeconfig(parser)
    parser.add_argument("--rollback-on-failure", action="store_true",
                        help="restore the previous pod template (saved on the workload before "
                        "the upgrade applies, exactly as the cluster held it) when the rollout "
                        "or the self-test after it fails")
    clusteropts.add_timeout(parser, "the upgrade may take from applying the new template "
                            "on (its rollout gets half when --rollback-on-failure keeps the "
                            "rest for a rollback)")
    parser.add_argument("--selftest-timeout", type=int, default=300, metavar="SECONDS",
                        help="give up on each self-test after this long (default: 300)")
    clusteropts.add_via_ansible(parser, "upgrade.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from zuul_k8s.cluster.client import Cluster
    from zuul_k8s.cluster.upgrade import InvalidObjects, checked_objects, upgrade

    clusteropts.require_config(args, "upgrade")
    config = common.config_from(args)
    zuul_conf, parsed = common.zuul_conf_from(args)
    try:
        checked_objects(config, args.image, zuul_conf, parsed)  # before connecting: nothing touched
        if args.via_ansible:  # the module validates again, on the controller
            return clusteropts.via_ansible(args, "upgrade.yaml", {
                "image": args.image, "zuul_k8s_config": args.config, "zuul_conf": args.zuul_conf,
                "kubeconfig": args.kubeconfig, "rollback_on_failure": args.rollback_on_failure,
                "rollout_timeout": args.timeout, "selftest_timeout": args.selftest_timeout})
        result = upgrade(Cluster.connect(args.kubeconfig), config, args.image,
                         rollback_on_failure=args.rollback_on_failure, timeout=args.timeout,
                         selftest_timeout=args.selftest_timeout, say=clusteropts.say,
                         zuul_conf=zuul_conf)
    except InvalidObjects as exc:
        common.print_findings(exc.findings, "text", sys.stderr)
        print(f"refusing to touch the cluster: {len(common.blocking(exc.findings))} error(s) in "
              "the rendered objects", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if result.ok else EXIT_FAILED

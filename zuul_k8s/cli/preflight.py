"""`zuul-k8s preflight`: can this cluster run the executor unprivileged?"""

from __future__ import annotations

import argparse

from zuul_k8s.cli import clusteropts, common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "preflight", help="check the cluster, its nodes, namespace, Secrets and permissions",
        description="Check the API server version; every node that may run the executor "
        "(nodeSelector and tolerations honoured) for kernel 6.3+, containerd 2.0+ or CRI-O 1.25+, "
        "kubelet version and OS; the namespace's Pod Security labels and, for an existing "
        "namespace, the pods the labels the kit would set deny and the objects it would fight "
        "over (another deployer's executor, its names taken); the Secrets the config "
        "names and their keys (never their values); and every permission apply, selftest and "
        "upgrade use (one SelfSubjectAccessReview per rule). Cordoned nodes are not eligible; "
        "a read the cluster refuses is a blocking row. Exit 1 when something blocks.",
    )
    common.add_config(parser)
    clusteropts.add_kubeconfig(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zuul_k8s.cluster.client import Cluster
    from zuul_k8s.cluster.preflight import gather, table
    from zuul_k8s.render import render

    config = common.config_from(args)
    objects = render(config)
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    result = gather(Cluster.connect(args.kubeconfig), config, workload["spec"]["template"],
                    objects)
    print(table(result), end="")
    return EXIT_FAILED if result.blocked else EXIT_OK

"""`zuul-k8s selftest`: prove bwrap works with the executor's image and pod settings.

On the cluster, a Job per node with the executor's own pod template runs the
probe; with --local, podman runs it here with the pod's settings translated.
Either way it prints check by check what holds, and for each failure its cause
and fix. Exit 0 when no check failed, 1 when one did, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from zuul_k8s.cli import clusteropts, common
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "selftest", help="prove bwrap isolation with the executor's image and pod settings",
        description="Run the self-test probe with exactly the executor's image and pod security "
        "settings, and report per check what holds, what fails, why, and which setting fixes it. "
        "By default it runs as a Job on the cluster (one per eligible node with --all-nodes); "
        "--local runs it under podman on this machine. Exit 0 when every check passes or is "
        "skipped, 1 when one fails, 2 for bad input, an unreachable cluster or a missing podman.",
    )
    parser.add_argument("--local", action="store_true",
                        help="run the probe under podman here, with the pod's settings translated "
                        "to podman flags")
    cluster = parser.add_argument_group("on the cluster (without --local)")
    clusteropts.add_kubeconfig(cluster)  # type: ignore[arg-type]
    nodes = cluster.add_mutually_exclusive_group()
    nodes.add_argument("--node", metavar="NAME", help="run on this node (default: wherever it schedules)")
    nodes.add_argument("--all-nodes", action="store_true",
                       help="run one Job per node the executor may run on")
    cluster.add_argument("--start-timeout", type=float, default=120.0, metavar="SECONDS",
                         help="explain and give up on a pod that has not started after this long (default: 120)")
    clusteropts.add_via_ansible(cluster, "selftest.yaml")  # type: ignore[arg-type]
    source = parser.add_mutually_exclusive_group()
    common.add_config(source)  # type: ignore[arg-type]
    source.add_argument("-f", "--filename", metavar="MANIFEST",
                        help="with --local: take the executor pod from this manifest (any "
                        "deployer's; `-` reads stdin) instead of rendering the config")
    parser.add_argument("--image", help="image to test (default: the executor container's image)")
    parser.add_argument("--runtime-default", choices=("crio", "containerd"), default="containerd",
                        help="whose default capabilities the container starts from before the "
                        "pod's add and drop (default: containerd)")
    parser.add_argument("--seccomp-root", metavar="DIR",
                        help="where Localhost seccomp profiles resolve, like the kubelet's "
                        "/var/lib/kubelet/seccomp (default: the kit's own profiles, so "
                        "profiles/zuul-executor.json is the kit's profile)")
    parser.add_argument("--runtime-default-seccomp", metavar="FILE",
                        help="with --local, required for a pod with seccompProfile "
                        "RuntimeDefault: the node runtime's default seccomp profile as OCI JSON "
                        "(podman's own default allows unshare and mount, so it proves nothing)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="give up on the probe after this long (default: 300)")
    common.add_output_format(parser)
    parser.set_defaults(func=run)


def _executor(args: argparse.Namespace) -> tuple[Any, str]:
    from zuul_k8s.cli.validate import load_manifests
    from zuul_k8s.selftest.local import find_executor

    if args.filename:
        source = args.filename
        objects: list[Any] = load_manifests([source])
    else:
        from zuul_k8s.render import render

        config = common.config_from(args)
        source = f"{config.source} (rendered)"
        objects = render(config)
    return find_executor(objects, source), source


LOCAL_ONLY = ("filename", "seccomp_root", "runtime_default_seccomp")
CLUSTER_ONLY = ("kubeconfig", "node", "all_nodes", "via_ansible")


def run(args: argparse.Namespace) -> int:
    if args.local:
        misplaced = [name for name in CLUSTER_ONLY if getattr(args, name)]
        if misplaced:
            option = misplaced[0].replace("_", "-")
            raise UserError(f"--{option} is for the cluster self-test; drop --local or the option")
        return run_local(args)
    misplaced = [name for name in LOCAL_ONLY if getattr(args, name)]
    if misplaced:
        raise UserError(f"--{misplaced[0].replace('_', '-')} goes with --local")
    if args.via_ansible:
        if args.output != "text":
            raise UserError("--via-ansible prints Ansible's output; drop -o/--output")
        common.config_from(args)  # a bad config: exit 2 here, before the play
        return clusteropts.via_ansible(args, "selftest.yaml", {
            "zuul_k8s_config": args.config, "kubeconfig": args.kubeconfig, "image": args.image,
            "node": args.node, "all_nodes": None if args.node else args.all_nodes,
            "probe_timeout": int(args.timeout), "start_timeout": args.start_timeout})
    from zuul_k8s.cluster.selftest_job import run_cluster_selftest

    return run_cluster_selftest(args)


def run_local(args: argparse.Namespace) -> int:
    from zuul_k8s.profiles import seccomp_root
    from zuul_k8s.selftest import local, output
    from zuul_k8s.selftest.diagnosis import diagnose
    from zuul_k8s.selftest.podman import Options, translate

    executor, source = _executor(args)
    image = args.image or executor.container.get("image")
    if not isinstance(image, str) or not image:
        raise UserError(f"{source}: the executor container names no image; pass --image")
    apparmor, selinux = local.host_lsms()
    options = Options(
        runtime=args.runtime_default,
        seccomp_root=Path(args.seccomp_root) if args.seccomp_root else seccomp_root(),
        runtime_default_seccomp=(
            Path(args.runtime_default_seccomp) if args.runtime_default_seccomp else None
        ),
        host_apparmor=apparmor,
        host_selinux=selinux,
    )
    translation = translate(executor.template, executor.container_path, executor.container,
                            options, source)
    for note in translation.notes:
        print(f"note: {note}", file=sys.stderr)
    report = local.run_probe(image, translation, timeout=args.timeout,
                             log=lambda line: print(line, file=sys.stderr))
    diagnoses = diagnose(report)
    if args.output == "json":
        sys.stdout.write(output.format_json(
            report, diagnoses,
            podman={"image": image, "flags": list(translation.flags),
                    "notes": list(translation.notes)},
        ))
    else:
        print(f"podman flags: {' '.join(translation.flags)}")
        sys.stdout.write(output.format_table(report, diagnoses))
    return EXIT_OK if report["ok"] else EXIT_FAILED

"""`zuul-k8s selftest`: prove bwrap works with the executor's image and pod settings.

On the cluster, a Job per node with the executor's own pod template runs the
probe; with --local, podman runs it here with the pod's settings translated;
with --zuul, zuul-web enqueues the zuul-k8s-selftest job and a real executor
runs its checker inside a real build. Each way it prints check by check what
holds, and for each failure its cause and fix. Exit 0 when no check failed, 1
when one did, 2 for bad input. --write-job writes the job's files.
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
        "--local runs it under podman on this machine; --zuul enqueues the zuul-k8s-selftest "
        "Zuul job, whose checker looks out from inside a real build on your executors. Exit 0 "
        "when every check passes or is skipped, 1 when one fails, 2 for bad input, an "
        "unreachable cluster or zuul-web, or a missing podman.",
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
                        help="give up on the probe (with --zuul: on each build, from enqueue to "
                        "its end) after this long (default: 300)")
    zuul = parser.add_argument_group("from inside a Zuul build (--zuul)")
    zuul.add_argument("--zuul", metavar="URL", help="zuul-web's base URL: enqueue the "
                      "zuul-k8s-selftest job there, follow its build and report its checks")
    zuul.add_argument("--tenant", help="the Zuul tenant (required with --zuul)")
    zuul.add_argument("--project", help="the project to enqueue (default: the project that "
                      "defines the job)")
    zuul.add_argument("--pipeline", help="the pipeline to enqueue into (default: the one pipeline "
                      "in which the project runs the job)")
    zuul.add_argument("--token-file", metavar="FILE", help="a file holding an admin token "
                      "(JWT) for the tenant; default: the environment variable ZUUL_K8S_TOKEN. "
                      "Never printed")
    zuul.add_argument("--count", type=int, default=1, metavar="N",
                      help="run N builds, one after the other, and say which executors ran "
                      "them (default: 1)")
    parser.add_argument("--write-job", metavar="DIR", help="write the zuul-k8s-selftest job "
                        "(zuul.d/, playbooks/) into DIR, to copy into an untrusted project; "
                        "nothing else runs")
    parser.add_argument("--force", action="store_true",
                        help="with --write-job: overwrite files that differ")
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
ZUUL_ONLY = ("tenant", "project", "pipeline", "token_file")
POD_ONLY = ("local", "config", "image", *LOCAL_ONLY, *CLUSTER_ONLY)
TOKEN_ENV = "ZUUL_K8S_TOKEN"


def run(args: argparse.Namespace) -> int:
    if args.write_job:
        return write_job(args)
    if args.force:
        raise UserError("--force goes with --write-job")
    if args.zuul:
        misplaced = [name for name in POD_ONLY if getattr(args, name)]
        if misplaced:
            option = misplaced[0].replace("_", "-")
            raise UserError(f"--{option} is for the probe's self-test (cluster or --local); "
                            "--zuul runs the Zuul job on your executors as they are")
        return run_zuul(args)
    misplaced = [name for name in ZUUL_ONLY if getattr(args, name)]
    if misplaced or args.count != 1:
        option = misplaced[0].replace("_", "-") if misplaced else "count"
        raise UserError(f"--{option} goes with --zuul URL")
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


def write_job(args: argparse.Namespace) -> int:
    from zuul_k8s import zuuljob

    others = [name for name in (*POD_ONLY, *ZUUL_ONLY, "zuul") if getattr(args, name)]
    if others:
        raise UserError(f"--write-job writes files only; drop --{others[0].replace('_', '-')}")
    directory = Path(args.write_job)
    for path in zuuljob.write(directory, force=args.force):
        print(f"wrote {path}")
    print(f"next: copy {directory}/zuul.d and {directory}/playbooks into an untrusted project, add "
          f"{zuuljob.JOB_NAME} to one of its pipelines, then run zuul-k8s selftest --zuul URL "
          "--tenant TENANT (docs/selftest.md)")
    return EXIT_OK


def read_token(args: argparse.Namespace) -> str | None:
    """The token from --token-file, else $ZUUL_K8S_TOKEN; None when neither is given."""
    import os

    from zuul_k8s.errors import Problem

    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UserError(Problem(args.token_file, "", f"cannot read the token: {why}")) from None
        if not token:
            raise UserError(Problem(args.token_file, "", "is empty; it must hold the token (a JWT)"))
        return token
    return os.environ.get(TOKEN_ENV) or None


def run_zuul(args: argparse.Namespace) -> int:
    from zuul_k8s.selftest import output, zuulweb
    from zuul_k8s.selftest.diagnosis import diagnose

    if not args.tenant:
        raise UserError("--zuul needs --tenant (the tenant whose project runs zuul-k8s-selftest)")
    if args.count < 1:
        raise UserError(f"--count {args.count}: give 1 or more builds")
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    token = read_token(args)
    if token is None:
        raise UserError(f"no token: pass --token-file FILE or set {TOKEN_ENV} (a JWT zuul-web "
                        f"accepts as an admin of tenant {args.tenant})")
    client = zuulweb.ZuulWeb(args.zuul, args.tenant, token)
    target = zuulweb.resolve(client, args.project, args.pipeline)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log(f"zuul-web {client.url}: tenant {args.tenant}, project {target.project}, "
        f"pipeline {target.pipeline}, branch {target.branch}")
    builds = zuulweb.run_builds(client, target, args.count, args.timeout, log=log)
    missing = [b for b in builds if b.report is None]
    if missing:
        first = missing[0]
        raise UserError(f"build {first.uuid} ended {first.result} without a report"
                        + (f" ({first.error_detail})" if first.error_detail else "")
                        + f"; its log: {first.log_url or client.url + '/t/' + args.tenant + '/build/' + first.uuid}")
    ok = all(b.report is not None and b.report["ok"] for b in builds)
    if args.output == "json":
        import json

        document = {
            "ok": ok,
            "zuul": {"url": client.url, "tenant": args.tenant, "project": target.project,
                     "pipeline": target.pipeline},
            "builds": [
                {"uuid": b.uuid, "result": b.result, "executor": b.executor, "log_url": b.log_url,
                 **output.as_document(b.report, diagnose(b.report))}
                for b in builds if b.report is not None
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for build in builds:
            assert build.report is not None
            print(f"build {build.uuid} on executor {build.executor or '(unknown)'}: {build.result}"
                  + (f" (log: {build.log_url})" if build.log_url else ""))
            sys.stdout.write(output.format_table(build.report, diagnose(build.report)))
            print()
        if len(builds) > 1:
            print(executors_line(builds))
    return EXIT_OK if ok else EXIT_FAILED


def executors_line(builds: list[Any]) -> str:
    """Which executors ran the builds, and how each went."""
    counts: dict[str, list[int]] = {}
    for build in builds:
        passed = counts.setdefault(build.executor or "(unknown)", [0, 0])
        passed[0 if build.report and build.report["ok"] else 1] += 1
    parts = [f"{name} ({ok + bad} build{'s' if ok + bad != 1 else ''}"
             + (f", {bad} failed" if bad else "") + ")"
             for name, (ok, bad) in sorted(counts.items())]
    return f"{len(builds)} builds on {len(counts)} executor{'s' if len(counts) != 1 else ''}: " + ", ".join(parts)

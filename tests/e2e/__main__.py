"""Run the end-to-end Zuul by hand: `python -m tests.e2e` (from the repository root, as root).

Starts ZooKeeper (TLS), PostgreSQL, zuul-scheduler, zuul-merger, zuul-web and,
unless --no-executor, the executor as the kit renders it: under podman, or
with --kubernetes on a real Kubernetes built here (control plane and one real
node), deployed by `zuul-k8s apply`. Prints where zuul-web is, then `ready`;
runs until SIGINT or SIGTERM, then removes everything it started. Exit 0 after
a clean stop, 1 when something did not come up, 2 when a tool is missing or
the arguments are wrong.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from tests.e2e import harness, process, tenant, tools


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where logs, config and repositories go "
                        "(default: a new temporary directory, removed at exit)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (logs) at exit")
    parser.add_argument("--no-executor", action="store_true", help="start Zuul without an executor")
    parser.add_argument("--uid", type=int, default=None,
                        help="the kit config's user.uid for the executor (default: the example's, 10001)")
    parser.add_argument("--kubernetes", type=Path, metavar="KUBECONFIG",
                        help="run the executor on a real Kubernetes built here (control plane and a real "
                        "node), deployed by `zuul-k8s apply`; write its admin kubeconfig to KUBECONFIG")
    args = parser.parse_args(argv)
    if args.kubernetes and (args.uid is not None or args.no_executor):
        parser.error("--kubernetes deploys the executor from the example config: without --uid and "
                     "--no-executor (edit zuul-k8s.yaml in the workdir and run `zuul-k8s apply` to change it)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    absent = tools.missing()
    if absent:
        print("error: the end-to-end Zuul needs: " + "; ".join(absent), file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zuul-k8s-e2e-"))
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    zuul = harness.Zuul(workdir / "zuul")
    cluster = None
    try:
        with tools.podman_conf(workdir / "podman"):
            try:
                print(f"starting in {workdir} (first run: builds the executor image and Zuul's venv, "
                      "several minutes)", flush=True)
                if args.kubernetes:
                    cluster = _start_cluster(workdir, args.kubernetes)
                    zuul.address = cluster.node.slot.host_ip
                zuul.start()
                print(f"zuul-web: {zuul.web_url} (tenant {tenant.TENANT}, pipeline {tenant.PIPELINE})")
                token = workdir / "admin-token"
                token.write_text(zuul.token() + "\n")
                token.chmod(0o600)
                print(f"admin token for the enqueue API: {token}")
                if cluster is not None:
                    _deploy(zuul, cluster, args, workdir)
                elif not args.no_executor:
                    overrides = {"user": {"uid": args.uid}} if args.uid is not None else None
                    pod = zuul.start_executor(overrides)
                    ready = pod.probe("readinessProbe")
                    print(f"executor: podman container {pod.name}, "
                          f"http://{pod.pod_ip}:{ready.port}{ready.path} answers 200, log {pod.service.log}")
                print(f"logs: {zuul.workdir}")
                print("ready", flush=True)
                threading.Event().wait()
            except KeyboardInterrupt as stop:
                print(f"stopping ({stop or 'SIGINT'})", flush=True)
            except (process.StartError, harness.ZuulError, RuntimeError, TimeoutError) as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            finally:
                for sig in previous:
                    signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
                zuul.close()
                if cluster is not None:
                    cluster.stop()
                    args.kubernetes.unlink(missing_ok=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("stopped; everything started was removed")
    return 0


def _start_cluster(workdir: Path, kubeconfig: Path) -> Any:
    from tests.k8s.harness import TestCluster

    print("starting Kubernetes (control plane and a real node; first run: builds them from Go "
          "modules, about 20 minutes)", flush=True)
    cluster = TestCluster(kwok=False, real_node=True, workdir=workdir / "kubernetes").start()
    shutil.copyfile(cluster.kubeconfig, kubeconfig)
    kubeconfig.chmod(0o600)
    print(f"kubeconfig: {kubeconfig}")
    return cluster


def _deploy(zuul: harness.Zuul, cluster: Any, args: argparse.Namespace, workdir: Path) -> None:
    from tests.e2e import kubernetes

    kubernetes.import_image(cluster.node, zuul.image)
    deployment = kubernetes.deploy(zuul, cluster.node, str(args.kubernetes), workdir)
    print(deployment.transcript["apply"].stdout, end="")
    [pod] = deployment.ready_executors()
    print(f"executor: pod {kubernetes.NAMESPACE}/{pod['metadata']['name']} on {pod['spec']['nodeName']}, "
          f"IP {pod['status']['podIP']}; config {deployment.config}, zuul.conf {deployment.zuul_conf}")


if __name__ == "__main__":
    sys.exit(main())

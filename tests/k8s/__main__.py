"""`python -m tests.k8s --kubeconfig FILE [--kwok-nodes N] [--real-node]`: a real
cluster for by-hand use. Builds what is missing, writes FILE (an admin
kubeconfig) once /readyz answers, prints `ready`, and runs until SIGINT or
SIGTERM; then stops and removes everything it started."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from tests.k8s.build import BuildError
from tests.k8s.controlplane import Options
from tests.k8s.harness import TestCluster


def _gates(text: str) -> dict[str, bool]:
    gates = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if value.lower() not in ("true", "false"):
            raise argparse.ArgumentTypeError(f"{item!r}: expected NAME=true|false")
        gates[name] = value.lower() == "true"
    return gates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.k8s", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True, type=Path, help="where to write the admin kubeconfig")
    parser.add_argument("--kwok-nodes", type=int, default=0, metavar="N",
                        help="add N KWOK nodes (kwok-node-0 ...) reporting containerd 2.x with user namespaces")
    parser.add_argument("--real-node", action="store_true",
                        help="add the real node (kubelet, containerd, runc in a network namespace)")
    parser.add_argument("--emulated-version", metavar="1.MINOR", help="API server behaves as this older minor")
    parser.add_argument("--feature-gates", type=_gates, default={}, metavar="A=false,...")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    options = Options(emulated_version=args.emulated_version, feature_gates=args.feature_gates,
                      bind_address="127.0.0.1")
    cluster = TestCluster(options, kwok=args.kwok_nodes > 0, real_node=args.real_node)
    try:
        cluster.start()
        if cluster.kwok and args.kwok_nodes:
            cluster.kwok.add_nodes(args.kwok_nodes)
        shutil.copyfile(cluster.kubeconfig, args.kubeconfig)
        args.kubeconfig.chmod(0o600)
        print("ready", flush=True)
        while not stop.wait(1):
            cluster.check()
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        args.kubeconfig.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

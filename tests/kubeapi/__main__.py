"""Serve the API double on its own, as a stand-in "real" cluster for
ZUUL_K8S_TEST_KUBECONFIG (proves the real-cluster path of tests/cluster):

    python -m tests.kubeapi --kubeconfig /tmp/double.kubeconfig &
    ZUUL_K8S_TEST_KUBECONFIG=/tmp/double.kubeconfig python -m pytest tests/cluster

Two Ready nodes, node-a and node-b; runs until interrupted or terminated.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tests.kubeapi.controller import Controller, node
from tests.kubeapi.server import ApiServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kubeapi")
    parser.add_argument("--kubeconfig", required=True, help="where to write its kubeconfig")
    args = parser.parse_args()
    api = ApiServer()
    for name in ("node-a", "node-b"):
        api.store("Node", node(name), created=True)
    url = api.serve()
    controller = Controller(api)
    controller.start()
    Path(args.kubeconfig).write_text(api.kubeconfig(url))
    print(f"serving the API double at {url}; kubeconfig {args.kubeconfig}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.shutdown()
        api.shutdown()


if __name__ == "__main__":
    main()

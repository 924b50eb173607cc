"""`python -m tests.k8s`, as a user runs it by hand: `ready` once the API answers,
a kubeconfig that works, KWOK nodes on request, and nothing left after SIGTERM."""

from __future__ import annotations

import glob
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.tools import REPO
from zuul_k8s.cluster.client import Cluster

pytestmark = pytest.mark.cluster


def test_by_hand_cluster_starts_serves_and_cleans_up(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    before = set(glob.glob(f"{tempfile.gettempdir()}/zuul-k8s-cluster-*"))
    proc = subprocess.Popen([sys.executable, "-m", "tests.k8s", "--kubeconfig", str(kubeconfig),
                             "--kwok-nodes", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the cluster is up (or the process died)
        assert line == "ready\n", (line, proc.stderr.read() if proc.poll() is not None else "")
        cluster = Cluster.connect(str(kubeconfig))
        assert cluster.request("GET", "/version")["gitVersion"] == "v1.35.4"
        nodes = sorted(n["metadata"]["name"] for n in cluster.request("GET", "/api/v1/nodes")["items"])
        assert nodes == ["kwok-node-0", "kwok-node-1"]
        made = set(glob.glob(f"{tempfile.gettempdir()}/zuul-k8s-cluster-*")) - before
        assert len(made) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert not kubeconfig.exists()
    assert not [d for d in made if Path(d).exists()]
    time.sleep(0.5)
    leftovers = subprocess.run(["pgrep", "-f", str(next(iter(made)))], capture_output=True, text=True).stdout
    assert leftovers == "", "processes of the cluster outlived it"

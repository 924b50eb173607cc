"""The cluster workflows at scale, on the real control plane with KWOK nodes
(tests/k8s): `preflight` over 10, 100 and 1,000 nodes; `selftest --all-nodes`
over 10 and 100 nodes (one Job per node, side by side); `apply` and a full
`upgrade` (canary self-test, rolling update, self-test after) of 2 and 20
replicas, whose old pods KWOK deletes at once (instant drains).

Each figure is wall seconds of the kit's own command, in-process; the rows
also say how a figure grows with the count (seconds per node or replica
beyond the smallest size).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

Row = tuple[str, float, float, float, str]
RUNS, QUICK_RUNS = 3, 1


def unavailable() -> str | None:
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        return "needs Go to build the control plane (tests/k8s)"
    return None


def _cli(*argv: str) -> tuple[int, float]:
    from zuul_k8s.cli import main

    started = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    seconds = time.perf_counter() - started
    if code == 2:  # a usage error is the bench's own mistake: say what the kit said
        raise RuntimeError(f"zuul-k8s {argv[0]}: exit 2: {err.getvalue().strip()[-500:]}")
    return code, seconds


def _config(directory: Path, namespace: str, pool: str, replicas: int = 2) -> str:
    data = {"namespace": {"name": namespace}, "workload": {"replicas": replicas},
            "gracefulStopSeconds": 30, "scheduling": {"nodeSelector": {"pool": pool}}}
    path = directory / f"{namespace}-{replicas}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def rows(quick: bool = False) -> list[Row]:
    import json

    from tests.k8s.harness import TestCluster
    from tests.k8s.kwok import cri_log
    from tests.selftest.reports import make_report

    runs = QUICK_RUNS if quick else RUNS
    out: list[Row] = []
    with TestCluster() as cluster:
        assert cluster.kwok is not None
        kube = str(cluster.kubeconfig)
        work = cluster.dir / "bench"
        work.mkdir()
        report = work / "report.log"
        report.write_text(cri_log(json.dumps(make_report(), indent=2)))

        def timed(label: str, argv: list[str], expect: tuple[int, ...]) -> list[float]:
            times = []
            for _ in range(runs):
                code, seconds = _cli(*argv)
                if code not in expect:
                    raise RuntimeError(f"{label}: exit {code}")
                times.append(seconds)
            return times

        def row(figure: str, times: list[float], target: str = "") -> None:
            out.append((figure, statistics.median(times), min(times), max(times), target))
            print(f"  {figure}: {statistics.median(times):.2f} s", file=sys.stderr)

        # The 1,000 nodes' heartbeats load the machine: the Jobs and rollouts go first.
        selftest: dict[int, float] = {}
        for count in (10, 100):
            pool = f"st-{count}"
            cluster.kwok.add_nodes(count, prefix=pool, labels={"pool": pool})
            ns = f"bench-st-{uuid.uuid4().hex[:6]}"
            config = _config(work, ns, pool)
            _cli("apply", "-c", config, "--kubeconfig", kube, "--no-wait")  # its ServiceAccount
            cluster.kwok.logs(f"{ns}-logs", report, [ns])
            times = timed("selftest", ["selftest", "--all-nodes", "-c", config, "--kubeconfig", kube], (0,))
            selftest[count] = statistics.median(times)
            row(f"selftest --all-nodes, {count} nodes (s)", times,
                "< 2 x 1 node + per-node cost" if count == 100 else "")
        one = cluster.kwok.add_nodes(1, prefix="st-one", labels={"pool": "st-one"})
        ns = f"bench-st1-{uuid.uuid4().hex[:6]}"
        config = _config(work, ns, "st-one")
        _cli("apply", "-c", config, "--kubeconfig", kube, "--no-wait")
        cluster.kwok.logs(f"{ns}-logs", report, [ns])
        single = timed("selftest", ["selftest", "--node", one[0], "-c", config, "--kubeconfig", kube], (0,))
        row("selftest --node, 1 node (s)", single)
        per_node = (selftest[100] - selftest[10]) / 90
        out.append(("selftest --all-nodes: cost per node beyond 10 (s)", per_node, per_node, per_node, ""))

        cluster.kwok.add_nodes(20, prefix="up", labels={"pool": "up"})
        for replicas in (2, 20):
            ns = f"bench-up-{uuid.uuid4().hex[:6]}"
            config = _config(work, ns, "up", replicas)
            cluster.kwok.logs(f"{ns}-logs", report, [ns])
            times = timed("apply", ["apply", "-c", config, "--kubeconfig", kube, "--timeout", "600"], (0,))
            row(f"apply, {replicas} replicas, to ready (s)", times)
            upgrades = []
            for run in range(runs):
                image = f"quay.io/zuul-ci/zuul-executor:bench-{run}"
                code, seconds = _cli("upgrade", "--image", image, "-c", config, "--kubeconfig", kube,
                                     "--timeout", "900")
                if code != 0:
                    raise RuntimeError(f"upgrade of {replicas} replicas: exit {code}")
                upgrades.append(seconds)
            row(f"upgrade (canary, roll, self-test), {replicas} replicas (s)", upgrades)
        added = 0
        preflight: dict[int, float] = {}
        for count in (10, 100, 1000):
            cluster.kwok.add_nodes(count - added, prefix=f"bench-{count}", labels={"pool": "bench"})
            added = count
            ns = f"bench-pf-{uuid.uuid4().hex[:6]}"
            times = timed("preflight", ["preflight", "-c", _config(work, ns, "bench"), "--kubeconfig", kube], (0, 1))
            preflight[count] = statistics.median(times)
            row(f"preflight, {count} nodes (s)", times)
        per_node = (preflight[1000] - preflight[10]) / 990
        out.append(("preflight: cost per node beyond 10 (s)", per_node, per_node, per_node, ""))

    return out


if __name__ == "__main__":
    for figure, median, low, high, target in rows("--quick" in sys.argv):
        print(f"{figure:60} {median:8.2f} {low:8.2f} {high:8.2f}  {target}")

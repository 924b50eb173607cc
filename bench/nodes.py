"""How long node preparation takes: first and second run per node, and as hosts are added.

Nodes are the tests' SSH nodes (tests/nodes/sshnodes.py: one sshd per node in
its own network and mount namespace, with a private copy of this machine's
SELinux store), prepared with `zuul-k8s nodes prepare` through ansible-runner,
exactly as a user would. A first run installs the SELinux module (a full
policy rebuild) and the seccomp profile; a second run finds both current.

Run as root from the repo: `python bench/nodes.py [--repeat N]` (a few minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.nodes.helpers import container_module, semodule_list  # noqa: E402
from tests.nodes.sshnodes import NodeSpec, SshNodes  # noqa: E402

HOSTVARS = {"zuul_k8s_selinux_module": "install"}


def prepare(inventory: Path, forks: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "nodes", "prepare", "-i", str(inventory),
         "--forks", str(forks)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def first_and_second(hosts: int, forks: int, repeat: int) -> tuple[list[float], list[float]]:
    """Fresh nodes per repetition for the first run; second runs on the last set."""
    firsts: list[float] = []
    seconds: list[float] = []
    for attempt in range(repeat):
        with tempfile.TemporaryDirectory(prefix="zuul-k8s-bench-") as tmp:
            nodes = SshNodes(Path(tmp) / "nodes", [
                NodeSpec(f"node{i}", hostvars=HOSTVARS) for i in range(1, hosts + 1)
            ])
            try:
                nodes.start()
                inventory = Path(tmp) / "inventory.yaml"
                inventory.write_text(yaml.safe_dump(nodes.inventory()))
                firsts.append(prepare(inventory, forks))
                if attempt == repeat - 1:
                    seconds += [prepare(inventory, forks) for _ in range(repeat)]
            finally:
                nodes.stop()
    return firsts, seconds


def row(figure: str, values: list[float], target: str) -> str:
    return (f"{figure:<46} {statistics.median(values):>7.1f} {min(values):>7.1f} "
            f"{max(values):>7.1f}  {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (default 2)")
    parser.add_argument("--hosts", default="1,2,4", help="host counts (default 1,2,4)")
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]

    installed_container = False
    if "container" not in semodule_list():  # the nodes copy this store: it needs container_t
        subprocess.run(["semodule", "-n", "-i", str(container_module())], check=True,
                       capture_output=True)
        installed_container = True
    try:
        results = {n: first_and_second(n, forks=n, repeat=args.repeat) for n in counts}
        serial = first_and_second(max(counts), forks=1, repeat=1) if max(counts) > 1 else None
    finally:
        if installed_container:
            subprocess.run(["semodule", "-n", "-r", "container"], check=True, capture_output=True)

    print(f"{'figure (seconds, whole `zuul-k8s nodes prepare`)':<46} {'median':>7} {'min':>7} "
          f"{'max':>7}  target")
    first1, second1 = results[counts[0]]
    for n in counts:
        first, second = results[n]
        target_first = "< 60" if n == 1 else f"< {statistics.median(first1) * n:.0f} (n x 1 host)"
        target_second = "< 15" if n == 1 else f"< {2 * statistics.median(second1):.0f} (2 x 1 host)"
        print(row(f"first run, {n} host(s), forks {n}", first, target_first))
        print(row(f"second run (no change), {n} host(s), forks {n}", second, target_second))
    if serial is not None:
        first, second = serial
        print(row(f"first run, {max(counts)} hosts, forks 1", first, "(for comparison)"))
        print(row(f"second run, {max(counts)} hosts, forks 1", second, "(for comparison)"))
    print(f"\n{os.cpu_count()} CPUs; each first run rebuilds the whole SELinux policy per host "
          "(CPU-bound), so first runs scale with hosts / CPUs, not with forks.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

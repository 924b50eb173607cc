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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.nodes.helpers import (  # noqa: E402
    DEVEL_MAKEFILE,
    POLICY_SRC,
    container_module,
    semodule_list,
    table_rows,
)
from tests.nodes.sshnodes import SSHD, NodeSpec, SshNodes  # noqa: E402

HOSTVARS = {"zuul_k8s_selinux_module": "install"}
KIT_MODULE = "zuul_executor_bwrap"
DEFAULT_HOSTS = [1, 2, 4]
DEFAULT_REPEAT = 2
# What the SSH nodes and refpolicy's container module need (tests/nodes/).
TOOLS = ("semodule", "ssh", "ssh-keygen", "ip", "unshare", "make", "checkmodule",
         "semodule_package", "zstd")


def prepare(inventory: Path, forks: int, expect: str) -> float:
    """Seconds of one whole `zuul-k8s nodes prepare`; every host's selinux and seccomp must read `expect`.

    A first run that finds the module already there (or a second run that
    reinstalls it) would time something else than the figure says.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "nodes", "prepare", "-i", str(inventory),
         "--forks", str(forks)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed:\n{proc.stdout}\n{proc.stderr}")
    hosts = yaml.safe_load(inventory.read_text())["all"]["hosts"]
    found = table_rows(proc.stdout)
    wrong = [f"{host} {part}: {found.get((host, part), ('missing',))[0]}" for host in hosts
             for part in ("selinux", "seccomp") if found.get((host, part), ("",))[0] != expect]
    if wrong:
        raise SystemExit(f"prepare was to report {expect} on every host, got: {'; '.join(wrong)}")
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
                firsts.append(prepare(inventory, forks, "installed"))
                if attempt == repeat - 1:
                    seconds += [prepare(inventory, forks, "unchanged") for _ in range(repeat)]
            finally:
                nodes.stop()
    return firsts, seconds


def row(figure: str, values: list[float], target: str, width: int = 46) -> str:
    return (f"{figure:<{width}} {statistics.median(values):>7.1f} {min(values):>7.1f} "
            f"{max(values):>7.1f}  {target}")


def unavailable() -> str | None:
    """Why this bench cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces, the SELinux store)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [str(path) for path in (SSHD, POLICY_SRC, DEVEL_MAKEFILE) if not path.exists()]
    return f"missing {', '.join(missing)}" if missing else None


Runs = tuple[list[float], list[float]]  # seconds of the first runs, of the second runs
Results = dict[int, Runs]  # per host count


def measure(counts: list[int], repeat: int, serial: bool = True) -> tuple[Results, Runs | None]:
    """First and second runs per host count, and (optionally) the largest count with forks 1."""
    installed_container = False
    if KIT_MODULE in semodule_list():  # the nodes' stores are copies: they would have it too
        raise SystemExit(f"this machine's SELinux store holds {KIT_MODULE} (a test run, or left over): "
                         f"first runs would find it installed; remove it (semodule -n -r {KIT_MODULE})")
    if "container" not in semodule_list():  # the nodes copy this store: it needs container_t
        subprocess.run(["semodule", "-n", "-i", str(container_module())], check=True,
                       capture_output=True)
        installed_container = True
    try:
        results = {n: first_and_second(n, forks=n, repeat=repeat) for n in counts}
        one_by_one = (first_and_second(max(counts), forks=1, repeat=1)
                      if serial and max(counts) > 1 else None)
    finally:
        if installed_container:
            subprocess.run(["semodule", "-n", "-r", "container"], check=True, capture_output=True)
    return results, one_by_one


def figures(counts: list[int], results: Results, serial: Runs | None) -> list[tuple[str, list[float], str]]:
    """(figure, seconds, target) rows."""
    out = []
    base = counts[0]  # the smallest count measured: the baseline of the targets
    first_base, second_base = (statistics.median(v) for v in results[base])
    for n in counts:
        first, second = results[n]
        if n == 1:
            target_first, target_second = "< 60", "< 15"
        else:
            # First runs rebuild the policy on every host: at worst n / base times the baseline.
            per = "1 host" if base == 1 else f"{base} hosts"
            scale = f"{n}" if base == 1 else f"{n}/{base}"
            target_first = f"< {first_base * n / base:.0f} ({scale} x {per})"
            target_second = f"< {2 * second_base:.0f} (2 x {per})"
        out.append((f"first run, {n} host(s), forks {n}", first, target_first))
        out.append((f"second run (no change), {n} host(s), forks {n}", second, target_second))
    if serial is not None:
        first, second = serial
        out.append((f"first run, {max(counts)} hosts, forks 1", first, "(for comparison)"))
        out.append((f"second run, {max(counts)} hosts, forks 1", second, "(for comparison)"))
    return out


def rows(quick: bool = False) -> list[tuple[str, float, float, float, str]]:
    """(figure, median, min, max, target) rows in seconds, for bench/run.

    Quick: one run per figure, 1 and 2 hosts, no forks-1 comparison.
    """
    counts, repeat = ([1, 2], 1) if quick else (DEFAULT_HOSTS, DEFAULT_REPEAT)
    results, serial = measure(counts, repeat, serial=not quick)
    return [(f"nodes prepare, {figure} (s)", statistics.median(values), min(values), max(values),
             target) for figure, values, target in figures(counts, results, serial)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"runs per figure (default {DEFAULT_REPEAT})")
    parser.add_argument("--hosts", default=",".join(map(str, DEFAULT_HOSTS)),
                        help="host counts (default 1,2,4)")
    args = parser.parse_args()
    try:
        counts = sorted({int(n) for n in args.hosts.split(",")})
    except ValueError:
        parser.error(f"--hosts {args.hosts!r}: a comma-separated list of host counts, e.g. 1,2,4")
    if counts[0] < 1 or counts[-1] > 50:
        parser.error("--hosts: each count from 1 to 50")
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    results, serial = measure(counts, args.repeat)

    lines = figures(counts, results, serial)
    title = "figure (seconds, whole `zuul-k8s nodes prepare`)"
    width = max(len(title), *(len(figure) for figure, _, _ in lines))
    print(f"{title:<{width}} {'median':>7} {'min':>7} {'max':>7}  target")
    for figure, values, target in lines:
        print(row(figure, values, target, width))
    print(f"\n{os.cpu_count()} CPUs; each first run rebuilds the whole SELinux policy per host "
          "(CPU-bound), so first runs scale with hosts / CPUs, not with forks.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long `zuul-k8s render` and `zuul-k8s validate` take as fresh processes.

Prints a table (figure, median, min, max, target) and the slowest imports
(`python -X importtime`). Also shows that neither command imports the
`kubernetes` client: only cluster operations may pay for it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7
QUICK_RUNS = 3
TARGET_S = 0.5
COMMANDS = {"render": ["render"], "validate": ["validate"]}
Row = tuple[str, float, float, float, str]  # figure, median, min, max, target (bench/run reads them)


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zuul_k8s", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def import_profile(args: list[str]) -> tuple[list[tuple[int, str]], bool]:
    """(top cumulative import times in µs, whether the kubernetes client was imported)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "zuul_k8s", *args],
                            capture_output=True, text=True, check=True)
    found = []
    kubernetes = False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        found.append((int(cumulative), name))
        kubernetes |= name.strip() == "kubernetes" or name.strip().startswith("kubernetes.")
    return sorted(found, reverse=True)[:10], kubernetes


def rows(quick: bool = False) -> list[Row]:
    """(figure, median, min, max, target) per command: wall seconds of a fresh process."""
    out = []
    for label, args in COMMANDS.items():
        wall(args)  # warm the file cache
        times = [wall(args) for _ in range(QUICK_RUNS if quick else RUNS)]
        out.append((f"zuul-k8s {label} (s, fresh process)", statistics.median(times), min(times),
                    max(times), f"< {TARGET_S}"))
    return out


def main() -> int:
    print(f"{'figure':<34} {'median':>8} {'min':>8} {'max':>8} {'target':>8}")
    for figure, median, low, high, target in rows():
        print(f"{figure:<34} {median:>8.3f} {low:>8.3f} {high:>8.3f} {target:>8}")
    for label, args in COMMANDS.items():
        top, kubernetes = import_profile(args)
        print(f"\nslowest imports of `zuul-k8s {label}` (cumulative ms); kubernetes client imported: "
              f"{'YES' if kubernetes else 'no'}")
        for micros, name in top:
            print(f"  {micros / 1000:8.1f}  {name.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

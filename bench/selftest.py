"""How long the self-test takes: the probe's own wall time, and `selftest --local` end to end.

Uses the runtime tests' images (built on first use, cached by recipe hash) and
their containers.conf, and the kit's default pod at uid 10001. Prints a table:
figure, median, min, max, target. The probe's time is the report's durationMs
(facts plus all checks, measured inside the container); the end-to-end time is
a fresh `zuul-k8s selftest --local` process with a warm image, podman included.

    .venv/bin/python bench/selftest.py [RUNS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runtime.images import BASE, ZUUL, build  # noqa: E402
from tests.runtime.podman_conf import write_containers_conf  # noqa: E402

RUNS = 5
PROBE_TARGET_MS = 1000.0
END_TO_END_TARGET_S = 3.0


def selftest(image: str) -> tuple[float, float]:
    """(wall seconds of the CLI, the probe's durationMs) for one run."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "selftest", "--local", "--image", image, "-o", "json"],
        capture_output=True, text=True, cwd=REPO,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"selftest failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return wall, float(json.loads(result.stdout)["report"]["durationMs"])


def row(figure: str, values: list[float], target: str) -> str:
    return (f"{figure:<44} {statistics.median(values):>8.3f} {min(values):>8.3f} "
            f"{max(values):>8.3f} {target:>8}")


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CONTAINERS_CONF"] = str(write_containers_conf(Path(tmp)))
        images = {"no zuul": build(BASE), "with zuul": build(ZUUL)}
        print(f"{'figure':<44} {'median':>8} {'min':>8} {'max':>8} {'target':>8}")
        for label, image in images.items():
            selftest(image)  # warm: podman's id-mapped copy of the image, the page cache
            results = [selftest(image) for _ in range(runs)]
            print(row(f"probe, all checks, image {label} (ms)", [r[1] for r in results],
                      f"< {PROBE_TARGET_MS:.0f}"))
            print(row(f"selftest --local end to end, {label} (s)", [r[0] for r in results],
                      f"< {END_TO_END_TARGET_S:.0f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

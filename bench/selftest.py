"""How long the self-test takes: the probe in the container, and `selftest --local` end to end.

Uses the runtime tests' images (built on first use, cached by recipe hash) and
their containers.conf, and the kit's default pod at uid 10001. Prints a table:
figure, median, min, max, target. Three figures per image:
- the report's durationMs: what the probe measures of itself, from its first
  statement to its report (facts plus all checks; no interpreter start-up);
- `python3 probe.py` as a process inside the container, timed from outside it
  by a small harness in the same container (with the same podman flags):
  interpreter start-up, imports, every check and the JSON, as the pod runs it;
- a fresh `zuul-k8s selftest --local` process with a warm image, podman included.

    .venv/bin/python bench/selftest.py [RUNS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runtime.images import BASE, ZUUL, build, image_exists  # noqa: E402
from tests.runtime.podman_conf import write_containers_conf  # noqa: E402

RUNS = 5
QUICK_RUNS = 2
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


# Runs in the container: starts `python3 -` with the probe on its stdin, as a process,
# and prints its wall time and exit code; the probe's own output is discarded.
HARNESS = (
    "import subprocess, sys, time\n"
    "source = sys.stdin.buffer.read()\n"
    "start = time.monotonic()\n"
    "done = subprocess.run(['python3', '-'], input=source, stdout=subprocess.DEVNULL)\n"
    "print((time.monotonic() - start) * 1000, done.returncode)\n"
)


def probe_process_argv(image: str) -> list[str]:
    """`podman run` with the kit's default pod's flags, the harness as the command."""
    from zuul_k8s.config import load_config
    from zuul_k8s.profiles import seccomp_root
    from zuul_k8s.render import render
    from zuul_k8s.selftest import local
    from zuul_k8s.selftest.podman import Options, translate

    executor = local.find_executor(render(load_config(None)), "the built-in config")
    apparmor, selinux = local.host_lsms()
    options = Options(seccomp_root=seccomp_root(), host_apparmor=apparmor, host_selinux=selinux)
    translation = translate(executor.template, executor.container_path, executor.container,
                            options, "the built-in config")
    return ["podman", "run", "--rm", "--interactive", "--pull", "never", *translation.flags,
            "--entrypoint", "python3", image, "-c", HARNESS]


def probe_process(argv: list[str]) -> float:
    """Milliseconds of one `python3 probe.py` process inside the container."""
    from zuul_k8s.selftest import probe_source

    result = subprocess.run(argv, input=probe_source(), capture_output=True, cwd=REPO)
    fields = result.stdout.decode().split()
    if result.returncode != 0 or len(fields) != 2 or fields[1] != "0":
        raise SystemExit(f"the probe process failed ({result.returncode}, {fields}):\n"
                         f"{result.stderr.decode(errors='replace')}")
    return float(fields[0])


def unavailable() -> str | None:
    """Why this bench cannot run here (None: it can): podman, runc, and the images or the
    means to build them (debootstrap, root)."""
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed"
    built = all(image_exists(recipe.tag) for recipe in (BASE, ZUUL))
    if not built and (shutil.which("debootstrap") is None or os.geteuid() != 0):
        return "the test images are not built, and building them needs debootstrap and root"
    return None


def figures(runs: int) -> list[tuple[str, list[float], str]]:
    """(figure, values, target) per image: the probe's own time and the CLI's, end to end."""
    out = []
    saved = os.environ.get("CONTAINERS_CONF")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CONTAINERS_CONF"] = str(write_containers_conf(Path(tmp)))
        try:
            images = {"no zuul": build(BASE), "with zuul": build(ZUUL)}
            for label, image in images.items():
                selftest(image)  # warm: podman's id-mapped copy of the image, the page cache
                results = [selftest(image) for _ in range(runs)]
                argv = probe_process_argv(image)
                processes = [probe_process(argv) for _ in range(runs)]
                out.append((f"probe report durationMs, {label} (ms)",
                            [r[1] for r in results], f"< {PROBE_TARGET_MS:.0f}"))
                out.append((f"python3 probe.py process, {label} (ms)", processes,
                            f"< {PROBE_TARGET_MS:.0f}"))
                out.append((f"selftest --local end to end, {label} (s)", [r[0] for r in results],
                            f"< {END_TO_END_TARGET_S:.0f}"))
        finally:
            if saved is None:
                os.environ.pop("CONTAINERS_CONF", None)
            else:
                os.environ["CONTAINERS_CONF"] = saved
    return out


def rows(quick: bool = False) -> list[tuple[str, float, float, float, str]]:
    """(figure, median, min, max, target) rows, for bench/run."""
    return [(figure, statistics.median(values), min(values), max(values), target)
            for figure, values, target in figures(QUICK_RUNS if quick else RUNS)]


def row(figure: str, values: list[float], target: str) -> str:
    return (f"{figure:<44} {statistics.median(values):>8.3f} {min(values):>8.3f} "
            f"{max(values):>8.3f} {target:>8}")


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    print(f"{'figure':<44} {'median':>8} {'min':>8} {'max':>8} {'target':>8}")
    for figure, values, target in figures(runs):
        print(row(figure, values, target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the Pod Security engine judges objects: the whole upstream fixture set.

Loads every file under ../shared/fixtures/pod-security once, then evaluates
all of them (each at its own level and version) in several timed rounds, and
prints a table: figure, median, min, max, target. Loading YAML is not timed:
the figure is the engine's, which `zuul-k8s validate` runs on every object.

    .venv/bin/python bench/podsecurity.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import yaml

from zuul_k8s.podsecurity import evaluate_object, findings

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pod-security"
ROUNDS = 7
# `validate` judges tens of objects; 5,000/s keeps even a 1,000-object kustomize
# build under 0.2 s of engine time on the 2-core CI machine.
TARGET_OBJECTS_PER_S = 5_000
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load() -> list[tuple[dict, str, str, bool]]:
    """(object, level, version, expected allowed) for every fixture file."""
    cases = []
    for path in sorted(FIXTURES.glob("*/v1.*/*/*.yaml")):
        level, version, outcome = path.parts[-4:-1]
        obj = yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
        cases.append((obj, level, version, outcome == "pass"))
    return cases


def one_round(cases: list[tuple[dict, str, str, bool]]) -> tuple[float, int]:
    """Seconds to judge every case, and how many verdicts disagreed with the fixtures."""
    start = time.perf_counter()
    wrong = 0
    for obj, level, version, expected in cases:
        verdict = evaluate_object(obj, level, version)
        wrong += verdict is None or verdict.allowed is not expected
    return time.perf_counter() - start, wrong


def findings_round(cases: list[tuple[dict, str, str, bool]]) -> float:
    """Seconds for the `validate` seam: findings, with fixes and newer-version advice."""
    start = time.perf_counter()
    for obj, level, version, _ in cases:
        findings([obj], level, version)
    return time.perf_counter() - start


def row(label: str, values: list[float], unit: str, target: str) -> str:
    return (f"{label:<40} {statistics.median(values):>10.{unit}} {min(values):>10.{unit}} "
            f"{max(values):>10.{unit}} {target:>10}")


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    if rounds < 1 or not FIXTURES.is_dir():
        print(f"usage: {sys.argv[0]} [ROUNDS>=1]; fixtures expected at {FIXTURES}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cases = load()
    load_s = time.perf_counter() - started
    one_round(cases)  # warm: selection tables are cached on first use
    seconds, wrongs = [], 0
    for _ in range(rounds):
        elapsed, wrong = one_round(cases)
        seconds.append(elapsed)
        wrongs += wrong
    finding_seconds = [findings_round(cases) for _ in range(rounds)]
    rates = [len(cases) / s for s in seconds]
    print(f"{len(cases)} objects (fixture files), loaded once in {load_s:.2f} s; {rounds} rounds")
    print(f"{'figure':<40} {'median':>10} {'min':>10} {'max':>10} {'target':>10}")
    print(row("evaluate_object, seconds per round", seconds, "4f", ""))
    print(row("evaluate_object, objects/s", rates, "0f", f">= {TARGET_OBJECTS_PER_S}"))
    print(row("findings(), objects/s", [len(cases) / s for s in finding_seconds], "0f",
              f">= {TARGET_OBJECTS_PER_S}"))
    print(f"verdicts disagreeing with the fixtures: {wrongs}")
    return 1 if wrongs else 0


if __name__ == "__main__":
    raise SystemExit(main())

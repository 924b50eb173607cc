"""How fast the Pod Security engine judges objects: the whole upstream fixture set.

Loads every file under $ZUUL_K8S_FIXTURES/pod-security (default ../shared/fixtures) once, then evaluates
all of them (each at its own level and version) in several timed rounds, and
prints a table: figure, median, min, max, target. Loading YAML is not timed:
the figure is the engine's, which `zuul-k8s validate` runs on every object.

    .venv/bin/python bench/podsecurity.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from zuul_k8s.podsecurity import evaluate_object, findings

# The same location the tests read (tests/tools.py): ZUUL_K8S_FIXTURES, else ../shared/fixtures.
FIXTURES = Path(os.environ.get("ZUUL_K8S_FIXTURES")
                or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures") / "pod-security"
ROUNDS = 7
QUICK_ROUNDS = 3
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


@dataclass(frozen=True)
class Measured:
    cases: int
    load_s: float
    rounds: int
    seconds: list[float]  # evaluate_object, per round
    finding_seconds: list[float]  # findings(), per round
    wrong: int  # verdicts disagreeing with the fixtures, over all rounds


def measure(rounds: int) -> Measured:
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
    return Measured(len(cases), load_s, rounds, seconds, finding_seconds, wrongs)


def figures(m: Measured) -> list[tuple[str, list[float], str, str]]:
    """(figure, values, number format, target) of one measurement."""
    return [
        ("evaluate_object, seconds per round", m.seconds, "4f", ""),
        ("evaluate_object, objects/s", [m.cases / s for s in m.seconds], "0f",
         f">= {TARGET_OBJECTS_PER_S}"),
        ("findings(), objects/s", [m.cases / s for s in m.finding_seconds], "0f",
         f">= {TARGET_OBJECTS_PER_S}"),
    ]


def unavailable() -> str | None:
    """Why this bench cannot run here (None: it can)."""
    return None if FIXTURES.is_dir() else f"no upstream fixtures at {FIXTURES}"


def rows(quick: bool = False) -> list[tuple[str, float, float, float, str]]:
    """(figure, median, min, max, target) rows; a verdict that disagrees is an error, not a row."""
    m = measure(QUICK_ROUNDS if quick else ROUNDS)
    if m.wrong:
        raise RuntimeError(f"{m.wrong} verdicts disagree with the upstream fixtures")
    return [(figure, statistics.median(values), min(values), max(values), target)
            for figure, values, _, target in figures(m)]


def row(label: str, values: list[float], unit: str, target: str) -> str:
    return (f"{label:<40} {statistics.median(values):>10.{unit}} {min(values):>10.{unit}} "
            f"{max(values):>10.{unit}} {target:>10}")


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    if rounds < 1 or not FIXTURES.is_dir():
        print(f"usage: {sys.argv[0]} [ROUNDS>=1]; fixtures expected at {FIXTURES}", file=sys.stderr)
        return 2
    m = measure(rounds)
    print(f"{m.cases} objects (fixture files), loaded once in {m.load_s:.2f} s; {rounds} rounds")
    print(f"{'figure':<40} {'median':>10} {'min':>10} {'max':>10} {'target':>10}")
    for figure, values, unit, target in figures(m):
        print(row(figure, values, unit, target))
    print(f"verdicts disagreeing with the fixtures: {m.wrong}")
    return 1 if m.wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())

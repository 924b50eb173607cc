"""Run every benchmark in bench/ and print one table: figure, median, min, max, target.

`bench/run` runs this with the repo's venv (the leading underscore keeps this
file out of the benches it runs). Each bench/NAME.py has `rows(quick) -> [(figure, median, min, max, target)]`
and may have `unavailable() -> reason | None`; this script imports them all,
runs them in turn (progress on stderr) and prints one table for a release
note. A bench whose prerequisites are missing (podman, root, the SELinux
tools) gets the row "n/a (reason)"; one that fails gets "FAILED (message)"
and the exit code 1.

    bench/run [--only NAME]... [--quick] [--format text|markdown]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# Benches in the order the table lists them; any other bench/*.py comes after, by name.
ORDER = ("core", "podsecurity", "selftest", "nodes")
COLUMNS = ("bench", "figure", "median", "min", "max", "target")


@dataclass(frozen=True)
class Line:
    """One row of the table: figures, or a bench that did not run and why."""

    bench: str
    figure: str
    numbers: tuple[float, float, float] | None = None
    target: str = ""


def bench_names() -> list[str]:
    found = {p.stem for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"zuul_k8s_bench_{name}", BENCH_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {text.splitlines()[0]}"


def run_bench(name: str, quick: bool) -> tuple[list[Line], bool]:
    """The bench's lines, and whether it failed (as opposed to ran, or could not run here)."""
    try:
        module = load(name)
    except Exception as exc:  # a bench that cannot even be imported is a failure to report
        return [Line(name, f"FAILED (cannot import: {_first_line(exc)})")], True
    if not callable(getattr(module, "rows", None)):
        return [Line(name, f"FAILED (bench/{name}.py has no rows(quick) function)")], True
    check = getattr(module, "unavailable", None)
    reason = check() if callable(check) else None
    if reason:
        return [Line(name, f"n/a ({reason})")], False
    try:
        rows = module.rows(quick=quick)
    except (Exception, SystemExit) as exc:  # the benches stop with SystemExit on a failed command
        return [Line(name, f"FAILED ({_first_line(exc)})")], True
    return [Line(name, figure, (median, low, high), target)
            for figure, median, low, high, target in rows], False


def number(value: float) -> str:
    """About four significant digits, never an exponent: 0.470, 1.302, 183.6, 12408."""
    magnitude = abs(value)
    digits = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 10 else 3
    return f"{value:.{digits}f}"


def cells(line: Line) -> tuple[str, ...]:
    numbers = tuple(number(v) for v in line.numbers) if line.numbers else ("", "", "")
    return (line.bench, line.figure, *numbers, line.target)


def text_table(lines: list[Line]) -> str:
    """Aligned columns; a bench that did not run is one line that does not widen them."""
    rows = [COLUMNS, *(cells(line) for line in lines)]
    measured = [COLUMNS, *(cells(line) for line in lines if line.numbers)]
    widths = [max(len(row[i]) for row in measured) for i in range(len(COLUMNS))]
    out = []
    for row in rows:
        left = f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}"
        numbers = "  ".join(f"{cell:>{widths[i]}}" for i, cell in enumerate(row[2:5], 2))
        out.append(f"{left}  {numbers}  {row[5]}".rstrip())
    return "\n".join(out) + "\n"


def markdown_table(lines: list[Line]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for line in lines:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells(line)) + " |")
    return "\n".join(out) + "\n"


def heading(quick: bool) -> str:
    from zuul_k8s import __version__

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"zuul-k8s {__version__} benchmarks, {when}: {os.cpu_count()} CPUs, "
            f"Linux {platform.release()}, Python {platform.python_version()}"
            + (" (--quick: fewer rounds)" if quick else ""))


def main(argv: list[str] | None = None) -> int:
    names = bench_names()
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this bench (repeatable): {', '.join(names)}")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds and hosts: a smoke run, not figures for a release note")
    parser.add_argument("--format", choices=("text", "markdown"), default="text",
                        help="table format (default: text)")
    args = parser.parse_args(argv)
    lines: list[Line] = []
    failed = False
    for name in args.only or names:
        print(f"bench/run: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        found, bench_failed = run_bench(name, args.quick)
        failed |= bench_failed
        lines += found
        print(f"bench/run: {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr,
              flush=True)
    print(heading(args.quick))
    print()
    sys.stdout.write(markdown_table(lines) if args.format == "markdown" else text_table(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

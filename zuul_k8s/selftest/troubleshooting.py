"""docs/troubleshooting.md, generated from the diagnosis rules so the two cannot drift.

Each rule of diagnosis.RULES becomes a section: the message bwrap prints, how
the self-test recognises the cause (the rule's conditions, in words), the
cause and the fix. An index by message comes first, since several causes share
one message. The pod-start explanations of cluster.podstatus follow, for a
self-test whose pod never ran.

    python -m zuul_k8s.selftest.troubleshooting                  # print it
    python -m zuul_k8s.selftest.troubleshooting --write docs/troubleshooting.md
    python -m zuul_k8s.selftest.troubleshooting --check docs/troubleshooting.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zuul_k8s.cluster import podstatus
from zuul_k8s.selftest.diagnosis import RULES, UNEXPLAINED, Condition, Fact, Failed, Rule, Stderr

COMMAND = "python -m zuul_k8s.selftest.troubleshooting --write docs/troubleshooting.md"

# How each Fact operator reads in a sentence (diagnosis.FACT_OPS).
FACT_WORDS: dict[str, str] = {
    "is": "is",
    "is not": "is not",
    "has": "includes",
    "lacks": "does not include",
    "set": "is set (not empty, not `unconfined`)",
    "matches": "matches",
}

INTRO = f"""\
# Troubleshooting bwrap in the executor pod

<!-- Generated from zuul_k8s/selftest/diagnosis.py and zuul_k8s/cluster/podstatus.py.
     Do not edit: change the rules, then run
     {COMMAND}
     (tests/docs fails when this file and the rules disagree). -->

When bwrap cannot build a job's sandbox, zuul-executor does not start: since
Zuul 8.3.1 it runs `id` under bwrap first and stops with
`bwrap execution validation failed`. bwrap's own reason is a line starting
with `bwrap:`; look it up in the index below.

Faster, and the only way when the log does not show that line:
`zuul-k8s selftest` (on the cluster, or `--local` under podman) runs bwrap step
by step and then the executor's own bwrap line, recognises every cause listed
here and prints its cause and fix under the check table. Each cause's id, shown in brackets there and as
`diagnoses[].id` in `-o json`, is the anchor of its section here.
See [selftest.md](selftest.md) for the checks themselves.

Several causes print the same message. The self-test tells them apart by the
facts it reads from the pod (`report.environment` in the JSON output), as each
section's "Recognised by" says.
"""


def _code(text: str) -> str:
    """`text` as inline code, even when it holds backticks."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def message(rule: Rule) -> str:
    """The rule's bwrap message as Markdown; "(none: ...)" and "(any other)" rows are prose."""
    text = rule.bwrap_message
    if text.startswith("(") and text.endswith(")"):
        inner = text[1:-1]
        if inner.startswith("none: "):
            return f"no bwrap message ({inner.removeprefix('none: ')})"
        return inner
    return _code(text)


def _listed(items: tuple[str, ...], joiner: str) -> str:
    """`a`, `b` and `c`: each as code, the last joined by `joiner`."""
    codes = [_code(item) for item in items]
    return codes[0] if len(codes) == 1 else f"{', '.join(codes[:-1])} {joiner} {codes[-1]}"


def condition(cond: Condition) -> str:
    """One condition of a rule, as a sentence fragment."""
    if isinstance(cond, Failed):
        noun = "check" if len(cond.checks) == 1 else "one of the checks"
        return f"{noun} {_listed(cond.checks, 'or')} fails"
    if isinstance(cond, Stderr):
        where = f" (checks {_listed(cond.checks, 'or')})" if cond.checks else ""
        return f"a failed check's stderr{where} matches {_code(cond.pattern)}"
    if isinstance(cond, Fact):
        words = FACT_WORDS[cond.op]
        value = "" if cond.op == "set" else " " + _code(_value(cond))
        return f"`environment.{cond.name}` {words}{value}"
    raise TypeError(f"unknown condition {cond!r}")


def _value(cond: Fact) -> str:
    return cond.value if cond.op == "matches" else json.dumps(cond.value)


def _section(rule: Rule) -> list[str]:
    lines = [f'<a id="{rule.id}"></a>', "", f"## {rule.title} (`{rule.id}`)", ""]
    lines.append(f"- **bwrap says:** {message(rule)}")
    if rule.when:
        lines.append("- **Recognised by:** " + "; and ".join(condition(c) for c in rule.when) + ".")
    also = tuple(rule.also_explains)
    if also or rule.also_explains_stderr:
        parts = [f"failed {'check' if len(also) == 1 else 'checks'} {_listed(also, 'and')}"] if also else []
        if rule.also_explains_stderr:
            parts.append(f"any failed check whose stderr matches {_code(rule.also_explains_stderr)}")
        lines.append("- **Also explains:** " + "; and ".join(parts) + ".")
    if rule.cause:
        lines.append(f"- **Cause:** {rule.cause}.")
    lines.append(f"- **Fix:** {rule.fix}.")
    return lines


def _index(rules: tuple[Rule, ...]) -> list[str]:
    lines = ["## Index by message", "", "| bwrap says | cause |", "| --- | --- |"]
    order: list[str] = []
    causes: dict[str, list[Rule]] = {}
    for rule in (*rules, UNEXPLAINED):
        if rule.bwrap_message not in causes:
            order.append(rule.bwrap_message)
        causes.setdefault(rule.bwrap_message, []).append(rule)
    for text in order:
        links = "; ".join(f"[{r.title}](#{r.id})" for r in causes[text])
        lines.append(f"| {_cell(message(causes[text][0]))} | {_cell(links)} |")
    return lines


def _pod_start() -> list[str]:
    """The self-test Job's pod never ran: podstatus's tables, which print `no report: ...`."""
    lines = [
        '<a id="pod-never-started"></a>',
        "",
        "## The self-test's pod never started",
        "",
        "The cluster self-test then prints `no report: the probe's pod never started: ...` for",
        "that node, with the reason below (from the pod's waiting state and the events of the",
        "pod and its Job).",
        "",
        "| pod or event says | meaning | fix |",
        "| --- | --- | --- |",
    ]
    fix_failed = podstatus.EVENT_REASONS["Failed"][1]
    for reason, meaning in podstatus.WAITING_REASONS.items():
        lines.append(f"| waiting: `{reason}` | {_cell(meaning)} | {_cell(fix_failed)} |")
    for reason, (meaning, fix) in podstatus.EVENT_REASONS.items():
        lines.append(f"| event: `{reason}` | {_cell(meaning)} | {_cell(fix)} |")
    for reason, (meaning, fix) in podstatus.POD_REJECTIONS.items():
        lines.append(f"| pod rejected: `{reason}` | {_cell(meaning)} | {_cell(fix)} |")
    for (reason, words), (meaning, fix) in podstatus.EVENT_MESSAGES.items():
        lines.append(f"| event: `{reason}` saying `{words}` | {_cell(meaning)} | {_cell(fix)} |")
    return lines


def markdown(rules: tuple[Rule, ...] = RULES) -> str:
    lines = [INTRO.rstrip("\n"), "", *_index(rules), ""]
    for rule in rules:
        lines += [*_section(rule), ""]
    unexplained = _section(UNEXPLAINED)
    lines += [*unexplained, "", *_pod_start()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zuul_k8s.selftest.troubleshooting",
        description="Generate docs/troubleshooting.md from the self-test's diagnosis rules.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="write the Markdown to FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from what would be written")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        return 0
    if args.check:
        current = _read(args.check)
        if current != text:
            print(f"{args.check} is out of date; regenerate it: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        return None


if __name__ == "__main__":
    raise SystemExit(main())

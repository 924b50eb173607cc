"""docs/troubleshooting.md is generated from the diagnosis rules: it must not drift, and must cover every rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, anchors
from zuul_k8s.selftest import troubleshooting
from zuul_k8s.selftest.diagnosis import FACT_OPS, RULES, UNEXPLAINED, Stderr

PATH = DOCS / "troubleshooting.md"


def test_troubleshooting_md_matches_the_diagnosis_rules() -> None:
    assert PATH.read_text(encoding="utf-8") == troubleshooting.markdown(), (
        "docs/troubleshooting.md drifted from zuul_k8s/selftest/diagnosis.py; regenerate it with: "
        f"{troubleshooting.COMMAND}"
    )


@pytest.mark.parametrize("rule", [*RULES, UNEXPLAINED], ids=lambda rule: rule.id)
def test_every_rule_has_a_section_an_index_entry_and_its_fix(rule: troubleshooting.Rule) -> None:
    text = troubleshooting.markdown()
    assert rule.id in anchors(text)
    assert f"](#{rule.id})" in text.split("## Index by message", 1)[1].split("<a id=", 1)[0]
    assert f"- **Fix:** {rule.fix}." in text
    if rule.cause:
        assert f"- **Cause:** {rule.cause}." in text


def _message_patterns(rule: troubleshooting.Rule) -> list[str]:
    """The stderr patterns by which the rule recognises bwrap's message."""
    patterns = [c.pattern for c in rule.when if isinstance(c, Stderr)]
    return patterns + ([rule.also_explains_stderr] if rule.also_explains_stderr else [])


# Rules that name a bwrap message and recognise it by stderr (the others go by a failed check).
BY_MESSAGE = [r for r in RULES if r.bwrap_message.startswith("bwrap:") and _message_patterns(r)]


@pytest.mark.parametrize("rule", BY_MESSAGE, ids=lambda rule: rule.id)
def test_each_documented_message_is_one_its_rule_recognises(rule: troubleshooting.Rule) -> None:
    """A reader looks the message up here; the self-test must reach the same section from it."""
    patterns = _message_patterns(rule)
    assert any(re.search(p, rule.bwrap_message) for p in patterns), (rule.bwrap_message, patterns)


def test_most_rules_are_found_by_their_message() -> None:
    assert len(BY_MESSAGE) >= 7, [r.id for r in BY_MESSAGE]


def test_messages_shared_by_several_causes_link_to_each() -> None:
    text = troubleshooting.markdown()
    proc = "`bwrap: Can't mount proc on /newroot/proc: Operation not permitted`"
    row = next(line for line in text.splitlines() if line.startswith(f"| {proc} |"))
    assert "(#no-userns)" in row and "(#proc-masked)" in row


def test_every_fact_operator_reads_as_words() -> None:
    assert set(troubleshooting.FACT_WORDS) == set(FACT_OPS)


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "troubleshooting.md"
    out.write_text(troubleshooting.markdown().replace("Cause:", "Why:", 1), encoding="utf-8")
    assert troubleshooting.main(["--check", str(out)]) == 1
    assert troubleshooting.COMMAND in capsys.readouterr().err
    assert troubleshooting.main(["--write", str(out)]) == 0
    assert troubleshooting.main(["--check", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == troubleshooting.markdown()

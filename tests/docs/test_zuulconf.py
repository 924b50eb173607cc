"""The zuul.conf getting-started.md shows fits the pod the kit renders, and its example output is real."""

from __future__ import annotations

import re

from tests.docs.markdown import doc
from zuul_k8s.config import load_config
from zuul_k8s.findings import format_text
from zuul_k8s.render import render
from zuul_k8s.validate.zuulconf import findings
from zuul_k8s.zuulconf import load

GUIDE = doc("getting-started.md")


def _block(language: str, after: str) -> str:
    """The first ```LANGUAGE block after the heading or line `after`."""
    rest = GUIDE[GUIDE.index(after):]
    match = re.search(rf"```{language}\n(.*?)```", rest, re.S)
    assert match, f"getting-started.md: no ```{language} block after {after!r}"
    return match.group(1)


def test_the_guides_zuul_conf_has_no_findings_against_the_starter_pod() -> None:
    text = _block("ini", "### The executor's zuul.conf")
    assert "[executor]" in text and "[zookeeper]" in text and "[keystore]" in text
    assert findings(load(text.encode(), "zuul.conf"), render(load_config(None))) == []


def test_the_guides_example_finding_is_what_the_check_prints() -> None:
    text = _block("ini", "### The executor's zuul.conf")
    command = "$ zuul-k8s validate -c zuul-k8s.yaml --zuul-conf zuul.conf\n"
    rest = GUIDE[GUIDE.index(command) + len(command):]
    shown = rest[:rest.index("```")].splitlines()
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("prometheus_port="))
    printed = format_text(findings(load(broken.encode(), "zuul.conf"), render(load_config(None))))
    assert printed.splitlines() == shown

"""`zuul-k8s podsecurity check` as a user runs it: a fresh process, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import REPO
from tests.tools import fixture as upstream_fixture

PASS = "pod-security/baseline/v1.34/pass/base.yaml"
FAIL = "pod-security/baseline/v1.34/fail/procmount1.yaml"

EXECUTOR = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: zuul-executor}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: zuul-executor}
spec:
  template:
    spec:
      hostUsers: false
      containers:
      - name: zuul-executor
        image: zuul/zuul-executor
        securityContext:
          procMount: Unmasked
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"""


def podsecurity(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "zuul_k8s", "podsecurity", "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def fixture(relative: str) -> str:
    return str(upstream_fixture(relative))


def test_allowed_exits_0() -> None:
    run = podsecurity("--level", "baseline", "--version", "v1.34", fixture(PASS))
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ALLOWED Pod/base\n"
    assert "1 allowed, 0 denied, 0 skipped at baseline:v1.34" in run.stderr


def test_denied_exits_1_naming_check_container_and_field() -> None:
    run = podsecurity("--level", "baseline", "--version", "v1.34", fixture(PASS), fixture(FAIL))
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines() == [
        "ALLOWED Pod/base",
        'DENIED Pod/procmount1: procMount: procMount (container "initcontainer1" must not set '
        'securityContext.procMount to "Unmasked")',
    ]


def test_version_decides_and_latest_is_the_default() -> None:
    """The executor pod: denied at baseline v1.34, admitted from v1.35 and by default."""
    old = podsecurity("--version", "v1.34", "-", stdin=EXECUTOR)
    assert old.returncode == 1
    assert "DENIED Deployment/zuul-executor: procMount:" in old.stdout
    assert "SKIPPED ServiceAccount/zuul-executor: makes no pods" in old.stdout
    new = podsecurity("-", stdin=EXECUTOR)
    assert new.returncode == 0, new.stdout
    assert "ALLOWED Deployment/zuul-executor" in new.stdout.splitlines()
    assert "at baseline:latest (v1.37 rules)" in new.stderr
    restricted = podsecurity("--level", "restricted", "-", stdin=EXECUTOR)
    assert restricted.returncode == 1
    assert "procMount_restricted" in restricted.stdout


def test_json_output(tmp_path: Path) -> None:
    manifest = tmp_path / "executor.yaml"
    manifest.write_text(EXECUTOR)
    run = podsecurity("--version", "v1.34", "-o", "json", str(manifest))
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert [(r["index"], r["kind"], r["skipped"], r["allowed"]) for r in report] == [
        (1, "ServiceAccount", True, None),
        (2, "Deployment", False, False),
    ]
    [denial] = report[1]["denials"]
    assert denial["check"] == "procMount"
    assert denial["reason"] == "procMount"
    assert '"zuul-executor"' in denial["detail"]
    assert denial["fields"] == ["spec.template.spec.containers[0].securityContext.procMount"]
    assert report[1]["file"] == str(manifest)


def test_list_items_are_judged(tmp_path: Path) -> None:
    manifest = tmp_path / "list.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {hostIPC: true}}\n"
        "- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {}}\n"
    )
    run = podsecurity("-o", "json", str(manifest))
    assert run.returncode == 1
    assert [(r["item"], r["name"], r["allowed"]) for r in json.loads(run.stdout)] == [
        (0, "a", False),
        (1, "b", True),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a\n- b\n", "doc1: not a Kubernetes object: a YAML list"),
        ("kind: Pod\nspec: {}\n", "doc1: not a Kubernetes object: no apiVersion"),
        ("apiVersion: v1\nkind: ''\n", "doc1: not a Kubernetes object: no kind"),
        ("apiVersion: v1\nkind: Pod\n---\nplain text\n", "doc1: spec: missing, but a Pod needs"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nspec: {template: []}\n",
            "doc1: spec.template: a list, but a Deployment needs its pod spec here",
        ),
        ("apiVersion: v1\nkind: Pod\nspec: {}\n---\n42\n", "doc2: not a Kubernetes object"),
        ("", "holds no YAML documents"),
        ("a: [\n", "not valid YAML"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
    ],
)
def test_bad_input_exits_2_with_file_and_document(tmp_path: Path, content: str, message: str) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(content)
    run = podsecurity(str(manifest))
    assert run.returncode == 2, run.stdout
    assert run.stdout == ""  # nothing is judged when any input is bad
    assert f"error: {manifest}:" in run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_a_capability_that_is_not_a_string_is_denied_not_a_traceback() -> None:
    """`add: [[SYS_ADMIN]]` once raised TypeError (a list in a frozenset lookup)."""
    bad = EXECUTOR.replace("capabilities: {drop: [ALL]}", "capabilities: {drop: [ALL], add: [[SYS_ADMIN]]}")
    assert bad != EXECUTOR
    run = podsecurity("-", stdin=bad)
    assert "Traceback" not in run.stderr
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines()[1] == (
        "DENIED Deployment/zuul-executor: capabilities_baseline: non-default capabilities "
        "(container \"zuul-executor\" must not include \"['SYS_ADMIN']\" in "
        "securityContext.capabilities.add)"
    )


def test_every_bad_input_is_reported_at_once(tmp_path: Path) -> None:
    run = podsecurity(str(tmp_path / "missing.yaml"), str(tmp_path), fixture(PASS))
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"error: {tmp_path / 'missing.yaml'}: no such file",
        f"error: {tmp_path}: is a directory, not a file",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1.35", "x.yaml"], "unknown Pod Security version '1.35'"),
        (["--level", "strict", "x.yaml"], "invalid choice: 'strict'"),
        ([], "the following arguments are required: FILE"),
        (["-", "-"], "stdin can be read only once"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    run = podsecurity(*args, stdin="")
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr

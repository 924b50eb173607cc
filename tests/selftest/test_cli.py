"""`zuul-k8s selftest`: bad input ends in one clear message and exit 2, before podman runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.selftest.reports import make_report
from zuul_k8s.errors import UserError
from zuul_k8s.selftest import output, report
from zuul_k8s.selftest.diagnosis import diagnose

REPO = Path(__file__).resolve().parents[2]


def selftest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zuul_k8s", "selftest", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


def rendered_manifest(tmp_path: Path, seccomp: dict[str, str] | None = None) -> Path:
    from tests.core.helpers import config
    from zuul_k8s.render import render

    objects = render(config())
    if seccomp:
        workload = next(o for o in objects if o["kind"] == "Deployment")
        workload["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = seccomp
    path = tmp_path / "executor.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return path


def test_local_only_options_need_local(tmp_path: Path) -> None:
    result = selftest("-f", str(rendered_manifest(tmp_path)))
    assert result.returncode == 2
    assert result.stderr == "error: zuul-k8s: --filename goes with --local\n"


def test_cluster_options_do_not_go_with_local() -> None:
    result = selftest("--local", "--all-nodes")
    assert result.returncode == 2
    assert "--all-nodes is for the cluster self-test" in result.stderr


def test_without_local_it_needs_a_cluster(tmp_path: Path) -> None:
    result = selftest("--kubeconfig", str(tmp_path / "missing-kubeconfig"))
    assert result.returncode == 2
    assert "missing-kubeconfig" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_manifest_without_an_executor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = selftest("--local", "-f", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: no workload with a zuul-executor container")
    assert "Traceback" not in result.stderr


def test_runtime_default_needs_the_runtimes_profile(tmp_path: Path) -> None:
    path = rendered_manifest(tmp_path, {"type": "RuntimeDefault"})
    result = selftest("--local", "-f", str(path))
    assert result.returncode == 2
    assert (f"error: {path}:spec.template.spec.securityContext.seccompProfile.type: "
            "RuntimeDefault: pass --runtime-default-seccomp FILE") in result.stderr


def test_help_says_runtime_default_needs_the_runtimes_profile() -> None:
    result = selftest("--help")
    assert result.returncode == 0
    assert "required for a pod with seccompProfile RuntimeDefault" in " ".join(result.stdout.split())


def test_a_missing_podman_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    result = selftest("--local", "-f", str(rendered_manifest(tmp_path)), env=env)
    assert result.returncode == 2
    assert "podman is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_report_is_a_clear_error() -> None:
    for text in (b"", b"Traceback (most recent call last):", b'{"apiVersion": 1}'):
        try:
            report.parse(text, "the probe's report")
        except UserError as exc:
            assert all(str(p).startswith("the probe's report") for p in exc.problems)
        else:
            raise AssertionError(f"{text!r} was accepted")


def test_table_numbers_each_cause_and_points_failures_at_it() -> None:
    uid_map = "bwrap: setting up uid map: Operation not permitted"
    bad = make_report({"uid": 0, "cap_bnd": ["CHOWN"]},
                      {"bwrap.userns": uid_map, "bwrap.executor": uid_map, "zuul.bwrap": ""})
    table = output.format_table(bad, diagnose(bad))
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert next(line for line in lines if line.startswith("bwrap.userns")).split()[1:3] == [
        "FAIL", "[1]"]
    assert "[1] a root executor lacks CAP_SETFCAP (root-without-setfcap)" in table
    assert f"    seen:     {uid_map}" in table
    assert "fix:      run as uid 10001" in table
    document = output.as_document(bad, diagnose(bad), podman={"flags": []})
    assert document["ok"] is False
    assert document["diagnoses"][0]["id"] == "root-without-setfcap"
    assert report.validate(document["report"], "x") is bad


def test_zuul_mode_bad_input_is_exit_2_before_any_request(tmp_path: Path) -> None:
    """Options of the wrong mode, no token, an empty token file: one line each, no traceback."""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    env = {k: v for k, v in os.environ.items() if k != "ZUUL_K8S_TOKEN"}
    cases = [
        (["--tenant", "t"], "--tenant goes with --zuul URL"),
        (["--count", "3"], "--count goes with --zuul URL"),
        (["--zuul", "http://127.0.0.1:9", "--tenant", "t", "--local"], "--local is for the probe"),
        (["--zuul", "http://127.0.0.1:9"], "--zuul needs --tenant"),
        (["--zuul", "http://127.0.0.1:9", "--tenant", "t"], "no token: pass --token-file"),
        (["--zuul", "http://127.0.0.1:9", "--tenant", "t", "--token-file", str(empty)], "is empty"),
        (["--zuul", "http://127.0.0.1:9", "--tenant", "t", "--count", "0"], "--count 0"),
        (["--zuul", "zuul.example.org", "--tenant", "t", "--token-file", str(empty)], "is empty"),
        (["--write-job", str(tmp_path / "j"), "--zuul", "http://x"], "--write-job writes files only"),
        (["--force"], "--force goes with --write-job"),
    ]
    for args, message in cases:
        result = selftest(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_zuul_mode_refuses_a_url_that_is_not_http() -> None:
    env = {**os.environ, "ZUUL_K8S_TOKEN": "token-value"}
    result = selftest("--zuul", "zuul.example.org", "--tenant", "t", env=env)
    assert result.returncode == 2 and "not an http(s) URL" in result.stderr, result.stderr
    assert "token-value" not in result.stderr + result.stdout

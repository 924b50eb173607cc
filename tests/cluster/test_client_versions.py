"""The lowest `kubernetes` client pyproject.toml declares really drives the kit
against the real API server (cluster/client.py uses ApiClient.param_serialize,
which 37.0.0 is the first to have)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.helpers import write_config
from tests.tools import REPO

pytestmark = pytest.mark.cluster


def lowest_declared() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'"kubernetes>=(\d+)(?:\.(\d+))?(?:\.(\d+))?', text)
    assert match, "pyproject.toml declares no lower bound for kubernetes"
    return ".".join(part or "0" for part in match.groups())


def test_the_lowest_declared_client_runs_preflight_and_apply(kubeconfig_path: str, namespace: str,
                                                             tmp_path: Path) -> None:
    version = lowest_declared()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    f"kubernetes=={version}"], check=True, capture_output=True)
    config = write_config(tmp_path, namespace)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import kubernetes; "
        "print('client', kubernetes.__version__); from zuul_k8s.cli import main; "
        "codes = [main(['preflight', '-c', sys.argv[2], '--kubeconfig', sys.argv[3]]), "
        "main(['apply', '-c', sys.argv[2], '--kubeconfig', sys.argv[3], '--no-wait'])]; print('codes', codes)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(site), config, kubeconfig_path],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert f"client {version}" in done.stdout, done.stdout + done.stderr
    assert "verdict: " in done.stdout and "Traceback" not in done.stderr, done.stderr
    assert f"Deployment {namespace}/zuul-executor: created" in done.stdout
    assert "codes [1, 0]" in done.stdout  # preflight: its Secrets are missing; apply: done

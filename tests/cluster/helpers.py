"""Running the CLI in-process, writing configs and making namespaces for the cluster tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from zuul_k8s.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, ns: str, name: str = "config.yaml",
                 **overrides: Any) -> str:
    """A config for the tests: small, in the test's own namespace, with the overrides merged in."""
    data: dict[str, Any] = {
        "namespace": {"name": ns},
        "workload": {"replicas": 2},
        "gracefulStopSeconds": 30,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def create_namespace(cluster: Any, name: str, labels: dict[str, str] | None = None,
                     service_accounts: tuple[str, ...] = ()) -> str:
    """A namespace for one test, with ServiceAccounts a pod there needs (a real server
    refuses a pod whose ServiceAccount is missing; an API-only server runs no controller
    to make `default`, and where one runs it may be first: a 409 is fine)."""
    from zuul_k8s.cluster.client import ApiError

    cluster.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})
    for account in service_accounts:
        try:
            cluster.request("POST", f"/api/v1/namespaces/{name}/serviceaccounts", body={
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}})
        except ApiError as err:
            if err.status != 409:
                raise
    return name


def deployment_path(namespace: str, name: str = "zuul-executor") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"

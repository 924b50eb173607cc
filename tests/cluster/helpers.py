"""Running the CLI in-process and writing configs for the cluster tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from zuul_k8s.cli import main

REAL = os.environ.get("ZUUL_K8S_TEST_KUBECONFIG")


def needs_double(why: str) -> pytest.MarkDecorator:
    """For a test that only the loopback double can run, with the reason it says when it
    skips against ZUUL_K8S_TEST_KUBECONFIG."""
    return pytest.mark.skipif(bool(REAL), reason=f"needs the API double: {why}")


# Why tests need the double, said once.
PODMAN = ("the probe's Job pods run under podman on this machine, in an image built here "
          "that a real cluster cannot pull")
READY = ("the double's kubelet makes executor pods Ready; on a real cluster the default "
         "image needs real Secrets and ZooKeeper before it is Ready")
HOOKS = "it injects a failure through the double's hooks"


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


def deployment_path(namespace: str, name: str = "zuul-executor") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"

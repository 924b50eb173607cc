"""Fixtures of the end-to-end Zuul (session scope: one Zuul for the whole run).

- `e2e_zuul`: a started `tests.e2e.harness.Zuul` (ZooKeeper with TLS, PostgreSQL,
  zuul-scheduler, zuul-web, the tenant); no executor of its own.
- `e2e_executor`: the executor rendered from the kit's example config (uid
  10001), started once, ready and registered; an `executor.ExecutorPod`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import harness, tools
from tests.e2e.executor import ExecutorPod


@pytest.fixture(scope="session")
def e2e_zuul(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Zuul]:
    tools.require()
    workdir = tmp_path_factory.mktemp("e2e")
    with tools.podman_conf(workdir / "podman"), harness.running(workdir / "zuul") as zuul:
        yield zuul


@pytest.fixture(scope="session")
def e2e_executor(e2e_zuul: harness.Zuul) -> ExecutorPod:
    return e2e_zuul.start_executor()

"""docs/executor-pod.md states the pod the renderer builds: its probe table and contract rules are read back."""

from __future__ import annotations

import re
from pathlib import Path

from tests.core.helpers import config
from tests.docs.markdown import doc, table
from zuul_k8s import executor_process as daemon
from zuul_k8s.render import render
from zuul_k8s.validate import contract

TEXT = doc("executor-pod.md")


def test_probe_table_is_the_rendered_probes() -> None:
    container = next(o for o in render(config()) if o["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"][0]
    rows = table(TEXT, "probe")
    assert [row[0] for row in rows] == [p.field for p in daemon.PROBES]
    for row in rows:
        probe = container[row[0]]
        assert row[1] == probe["httpGet"]["path"]
        assert row[2:5] == [f"{probe['periodSeconds']} s", f"{probe['timeoutSeconds']} s",
                            str(probe["failureThreshold"])]


def test_every_contract_rule_named_exists() -> None:
    named = set(re.findall(r"`contract/([A-Za-z0-9]+)`", TEXT))
    assert named >= {"pid1", "pid1Signals", "startupProbe", "sshKeyPath", "sshKeyMode", "stateDiskRequest",
                     "stateSizeLimit", "diskLimit", "readOnlyTmp", "fsGroupChangePolicy",
                     "publishNotReadyAddresses"}
    source = Path(contract.__file__).read_text(encoding="utf-8")
    assert all(f'"{rule}"' in source for rule in named), named

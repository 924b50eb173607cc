"""The executor self-test: a probe run inside the executor's own pod, and what its report means.

- probe.py: the stdlib-only probe, shipped as package data and run in the image;
- report.py: reading and validating the probe's JSON report;
- diagnosis.py: from failed checks to causes and the settings that fix them;
- output.py: the report and its diagnoses as a table or JSON;
- podman.py: a pod's security settings as podman flags (pure);
- local.py: running the probe under podman, the way the pod would run it.
- troubleshooting.py: docs/troubleshooting.md, generated from the diagnosis rules.
"""

from __future__ import annotations

from pathlib import Path

PROBE_PATH = Path(__file__).resolve().parent / "probe.py"


def probe_source() -> bytes:
    """The probe's code, as a ConfigMap or `python3 -` on stdin gets it."""
    return PROBE_PATH.read_bytes()

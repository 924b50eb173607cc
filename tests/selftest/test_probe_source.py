"""The probe as a file: Python 3.8, standard library only, and consistent with its schema."""

from __future__ import annotations

import ast
import sys

import pytest

from tests.pyfiles import top_level_imports
from zuul_k8s import schemas
from zuul_k8s.selftest import PROBE_PATH, jobcheck, probe


def test_probe_parses_as_python_3_8() -> None:
    # The probe runs in any executor image, whose Python may be as old as 3.8.
    ast.parse(PROBE_PATH.read_text(), filename=str(PROBE_PATH), feature_version=(3, 8))


def test_probe_imports_the_standard_library_only() -> None:
    imported = top_level_imports(PROBE_PATH)
    assert imported, "the probe imports nothing? the walk is broken"
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(
        sys.stdlib_module_names
    )


def test_check_ids_are_unique_and_needs_point_backwards() -> None:
    seen: list[str] = []
    for check_id, _, needs, _ in probe.CHECKS:
        assert check_id not in seen
        assert all(need in seen for need in needs), (check_id, needs)
        seen.append(check_id)


def test_schema_requires_every_environment_fact_the_probe_gathers() -> None:
    schema = schemas.load("selftest-report.schema.json")
    environment = schema["properties"]["environment"]
    assert environment["additionalProperties"] is False
    assert set(environment["required"]) == set(environment["properties"])
    for name, prop in environment["properties"].items():
        assert prop.get("description"), name
    # Every check appears: the probe's for kind probe (and v1), the job checker's for kind job.
    by_kind = schema["allOf"][1]
    assert by_kind["if"]["properties"]["kind"]["const"] == "job"
    assert by_kind["then"]["properties"]["checks"]["minItems"] == len(jobcheck.CHECKS)
    assert by_kind["else"]["properties"]["checks"]["minItems"] == len(probe.CHECKS)


def test_masked_proc_paths_are_the_runtimes_masked_and_readonly_paths() -> None:
    mountinfo = (
        "600 580 0:52 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        "601 600 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n"
        "602 600 0:53 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n"
        "603 580 0:54 / /processes rw - tmpfs tmpfs rw\n"
        "604 600 0:52 /sys /proc/sys ro,nosuid - proc proc rw\n"
    )
    assert probe.masked_proc_paths(mountinfo) == ["/proc/acpi", "/proc/kcore", "/proc/sys"]
    assert probe.masked_proc_paths(mountinfo.splitlines()[0]) == []


def test_other_mounts_below_proc_do_not_count_as_masked() -> None:
    """binfmt_misc (and its autofs trigger) sit below /proc on many hosts: nothing is masked."""
    mountinfo = (
        "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
        "40 22 0:36 / /proc/sys/fs/binfmt_misc rw,relatime shared:21 - autofs systemd-1 rw\n"
        "88 40 0:48 / /proc/sys/fs/binfmt_misc rw,nosuid,nodev,noexec - binfmt_misc "
        "binfmt_misc rw\n"
        "89 22 0:49 / /proc/xen rw - xenfs xenfs rw\n"
        "90 22 0:50 / /proc/acpi/extra rw - tmpfs tmpfs rw\n"
    )
    assert probe.masked_proc_paths(mountinfo) == []


def test_the_masked_paths_are_data() -> None:
    """The OCI defaults of containerd, moby and containers/common, /proc part only."""
    assert {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/scsi"} <= set(
        probe.MASKED_PROC_PATHS)
    assert set(probe.READONLY_PROC_PATHS) == {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                              "/proc/sysrq-trigger"}
    assert all(p.startswith("/proc/") for p in probe.MASKED_PROC_PATHS + probe.READONLY_PROC_PATHS)


@pytest.mark.parametrize(("stderr", "expected"), [
    ("unshare: unshare failed: No space left on device\n", "ENOSPC"),  # --disable-userns
    ("unshare: unshare failed: Operation not permitted", "EPERM"),
    ("warning: x\nunshare: unshare failed: No space left on device", "ENOSPC"),
    ("unshare: unshare failed: Invalid argument", None),
    ("unshare: unshare failed: Too many users", None),  # EUSERS: nesting depth, not the flag
    ("sh: 1: unshare: not found", None),
    ("No space left on device", None),
    ("unshare: unshare failed: No space left on device\nsomething after", None),
    ("", None),
    ("bwrap: Can't mount proc on /newroot/proc: Operation not permitted", None),
])
def test_nested_userns_refusal_needs_the_errno_disable_userns_causes(
        stderr: str, expected: str | None) -> None:
    assert probe.nested_userns_refusal(stderr) == expected


def test_capability_masks_decode_to_names() -> None:
    assert probe.cap_names("0000000080000000") == ["SETFCAP"]
    assert probe.cap_names("0000000000000000") == []
    assert probe.cap_names("00000000000000c1") == ["CHOWN", "SETGID", "SETUID"]
    assert probe.cap_names("0000020000000000") == ["CAP_41"]


def test_versions_compare_numerically() -> None:
    assert probe.version_tuple("bubblewrap 0.10.0", 3) > probe.version_tuple("0.8.0", 3)
    assert probe.version_tuple("6.1.0-28-amd64", 2) < probe.MIN_KERNEL
    assert probe.version_tuple("6.18.44-fc", 2) >= probe.MIN_KERNEL
    assert probe.version_tuple("", 3) == (0, 0, 0)


def test_interfaces_from_proc_net_dev() -> None:
    text = (
        "Inter-|   Receive\n face |bytes    packets\n"
        "    lo:       0       0    0\n  eth0:     340       4    0\n"
    )
    assert probe.interfaces(text) == ["eth0", "lo"]


def test_report_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schemas.load("selftest-report.schema.json"))

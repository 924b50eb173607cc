"""The per-host table and the progress lines, from events shaped as ansible-runner emits them."""

from __future__ import annotations

from typing import Any

from zuul_k8s.nodes.summary import Mode, Summary, event_diff, event_line


def event(kind: str, host: str, task: str, **res: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res}}


PLAN = {
    "selinux": {"action": "install", "reason": "SELinux is enabled"},
    "seccomp": {"action": "install", "reason": "every executor node needs it"},
    "apparmor": {"action": "skip", "reason": "AppArmor is not enabled on this node"},
}


def feed(summary: Summary, *events: dict[str, Any]) -> Summary:
    for item in events:
        summary.feed(item)
    return summary


def test_prepare_table_and_exit() -> None:
    summary = feed(
        Summary(Mode.PREPARE),
        event("runner_on_ok", "n1", "node: detect", plan=PLAN, warnings=["kernel old"]),
        event("runner_on_ok", "n1", "selinux: install module", changed=True, action="upgraded"),
        event("runner_on_ok", "n1", "seccomp: create directory", changed=True),
        event("runner_on_ok", "n1", "seccomp: install profile", changed=False),
        event("runner_on_ok", "n2", "node: detect", plan=PLAN),
        event("runner_on_ok", "n2", "selinux: install module", changed=False, action="unchanged"),
        event("runner_on_failed", "n2", "seccomp: install profile",
              msg="Read-only file system\nmore"),
        event("runner_on_unreachable", "n3", "node: validate variables", msg="ssh: timeout"),
    )
    table = summary.table()
    lines = {tuple(line.split(None, 2)[:2]): line for line in table.splitlines()[1:]}
    assert "upgraded" in lines[("n1", "selinux")]
    assert "installed" in lines[("n1", "seccomp")]  # a changed task makes the part changed
    assert "skipped" in lines[("n1", "apparmor")] and "not enabled" in lines[("n1", "apparmor")]
    assert "unchanged" in lines[("n2", "selinux")]
    assert lines[("n2", "seccomp")].split()[2:] == ["failed", "Read-only", "file", "system"]
    assert "unreachable: ssh: timeout" in lines[("n3", "(host)")]
    assert "kernel old" in lines[("n1", "(host)")]
    assert summary.exit_failed()
    assert not summary.hosts["n1"].failed and summary.hosts["n2"].failed


def test_verify_fails_when_anything_is_missing() -> None:
    summary = feed(
        Summary(Mode.VERIFY),
        event("runner_on_ok", "n1", "node: detect", plan=PLAN),
        event("runner_on_ok", "n1", "selinux: install module", changed=True, action="upgraded"),
        event("runner_on_ok", "n1", "seccomp: install profile", changed=False),
    )
    assert "outdated" in summary.table()
    assert summary.exit_failed()
    clean = feed(
        Summary(Mode.VERIFY),
        event("runner_on_ok", "n1", "node: detect", plan=PLAN),
        event("runner_on_ok", "n1", "selinux: install module", changed=False),
        event("runner_on_ok", "n1", "seccomp: install profile", changed=False),
    )
    assert not clean.exit_failed()


def test_refused_plan_and_host_failure_before_parts() -> None:
    plan = {**PLAN, "selinux": {"action": "fail", "reason": "semodule is not installed"}}
    summary = feed(
        Summary(Mode.PREPARE),
        event("runner_on_ok", "n1", "node: detect", plan=plan),
        event("runner_on_failed", "n1", "node: check the plan", msg="semodule is not installed"),
    )
    table = summary.table()
    assert "refused" in table and "host failed before this part" in table
    assert summary.exit_failed()


def test_event_lines() -> None:
    assert event_line({"event": "playbook_on_start"}) is None
    line = event_line(event("runner_on_ok", "n1", "selinux: install module", changed=True,
                            action="installed", warnings=["w1"]))
    assert line is not None
    first, second = line.splitlines()
    assert first.split() == ["n1", "changed", "selinux:", "install", "module:", "installed"]
    assert second.split() == ["n1", "warning", "w1"]


def test_event_diff_shows_text_changes_only() -> None:
    changed = event("runner_on_ok", "n1", "apparmor: install profile", changed=True,
                    diff={"before": "a\n", "after": "a\nb\n", "before_header": "/etc/x",
                          "after_header": "/etc/x"})
    assert event_diff(changed)[-1] == "+b"
    state_only = event("runner_on_ok", "n1", "seccomp: create directory", changed=True,
                       diff={"before": {"state": "absent"}, "after": {"state": "directory"}})
    assert event_diff(state_only) == []
    unchanged = event("runner_on_ok", "n1", "x: y", changed=False, diff={"before": "a", "after": "b"})
    assert event_diff(unchanged) == []


def test_cleanup_on_an_architecture_without_a_seccomp_profile_succeeds() -> None:
    """s390x: the removal plan (zuul_node_facts purpose=cleanup) refuses nothing, so no host fails.

    The events are those `nodes cleanup` gets from such a node (see
    test_unknown_arch.py for the run itself): the plan, then the removal task.
    """
    plan = {
        "selinux": {"action": "skip", "reason": "SELinux is not enabled on this node"},
        "seccomp": {"action": "remove", "reason": "removing needs no profile of the kit's",
                    "arch": "s390x"},
        "apparmor": {"action": "skip", "reason": "AppArmor is not enabled on this node"},
    }
    summary = feed(
        Summary(Mode.CLEANUP),
        event("runner_on_ok", "z1", "node: validate variables", changed=False),
        event("runner_on_ok", "z1", "node: detect", changed=False, plan=plan),
        event("runner_on_skipped", "z1", "node: check the plan"),
        event("runner_on_skipped", "z1", "selinux: remove module"),
        event("runner_on_ok", "z1", "seccomp: remove profile", changed=True,
              diff={"before": {"state": "file"}, "after": {"state": "absent"}}),
        event("runner_on_skipped", "z1", "apparmor: remove profile"),
    )
    assert not summary.exit_failed(), summary.table()
    lines = {tuple(line.split(None, 2)[:2]): line for line in summary.table().splitlines()[1:]}
    assert lines[("z1", "seccomp")].split()[2] == "removed"
    assert "refused" not in summary.table()


def test_cleanup_still_fails_a_host_whose_removal_plan_refuses() -> None:
    """What cleanup cannot do (SELinux enabled, no semodule) stays a failed host."""
    plan = {
        "selinux": {"action": "fail", "reason": "SELinux is enabled but semodule is not installed"},
        "seccomp": {"action": "remove", "reason": "every executor node needs it", "arch": "x86_64"},
        "apparmor": {"action": "skip", "reason": "AppArmor is not enabled on this node"},
    }
    summary = feed(
        Summary(Mode.CLEANUP),
        event("runner_on_ok", "n1", "node: detect", plan=plan),
        event("runner_on_failed", "n1", "node: check the plan",
              msg="SELinux is enabled but semodule is not installed"),
    )
    assert summary.exit_failed()
    assert "refused" in summary.table()

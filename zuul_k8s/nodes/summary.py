"""What happened on each host, from the playbook's events: one line per task, a table at the end.

The playbooks name their tasks `PART: what`, where PART is `node` (validation,
detection) or one of the parts a node gets (`selinux`, `seccomp`,
`apparmor`). The `node: detect` task returns the plan (install, skip with a
reason, or refuse with a reason) per part; the part's own tasks then say what
was done. Nothing here knows a task beyond that naming rule.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

PARTS = ("selinux", "seccomp", "apparmor")
DETECT_TASK = "node: detect"


class Mode(Enum):
    PREPARE = "prepare"
    CHECK = "prepare --check"
    VERIFY = "verify"
    CLEANUP = "cleanup"
    CLEANUP_CHECK = "cleanup --check"


# Per mode, what a part's task result means: (word when changed, word when not).
WORDS: dict[Mode, tuple[str, str]] = {
    Mode.PREPARE: ("installed", "unchanged"),
    Mode.CHECK: ("would install", "unchanged"),
    Mode.VERIFY: ("missing", "ok"),
    Mode.CLEANUP: ("removed", "absent"),
    Mode.CLEANUP_CHECK: ("would remove", "absent"),
}
# What the kit's own modules report as `action`, reworded per mode.
ACTION_WORDS: dict[Mode, dict[str, str]] = {
    Mode.PREPARE: {
        "upgraded": "upgraded",
        "replaced": "replaced",
        "updated": "updated",
        "loaded": "loaded",
    },
    Mode.CHECK: {
        "upgraded": "would upgrade",
        "replaced": "would replace",
        "updated": "would update",
        "loaded": "would load",
    },
    Mode.VERIFY: {
        "upgraded": "outdated",
        "replaced": "differs",
        "updated": "differs",
        "loaded": "not loaded",
    },
    Mode.CLEANUP: {},
    Mode.CLEANUP_CHECK: {},
}
RUNNER_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


@dataclass
class Part:
    status: str = "not run"
    why: str = ""
    failed: bool = False
    changed: bool = False


@dataclass
class Host:
    name: str
    parts: dict[str, Part] = field(default_factory=lambda: {p: Part() for p in PARTS})
    error: str = ""
    unreachable: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.unreachable or any(p.failed for p in self.parts.values())


def task_part(task: str) -> str:
    head, _, _ = task.partition(":")
    return head.strip()


def result_message(res: dict[str, Any]) -> str:
    """The one line a failed result has to say (first line of msg, else stderr)."""
    text = str(res.get("msg") or res.get("stderr") or res.get("reason") or "failed")
    return text.strip().splitlines()[0] if text.strip() else "failed"


def event_line(event: dict[str, Any]) -> str | None:
    """One progress line for a finished task on a host, or None for other events."""
    status = RUNNER_STATUS.get(event.get("event", ""))
    if status is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    if status == "ok" and res.get("changed"):
        status = "changed"
    detail = ""
    if status in ("failed", "unreachable"):
        detail = f": {result_message(res)}"
    elif isinstance(res.get("action"), str):
        detail = f": {res['action']}"
    host = data.get("host", "?")
    lines = [f"{host:<20} {status:<11} {data.get('task', '?')}{detail}"]
    lines += [f"{host:<20} {'warning':<11} {w}" for w in res.get("warnings") or ()]
    return "\n".join(lines)


def event_diff(event: dict[str, Any]) -> list[str]:
    """The unified diff a changed task reports (Ansible's `--diff` data), as lines."""
    if event.get("event") != "runner_on_ok":
        return []
    res = event.get("event_data", {}).get("res") or {}
    diffs = res.get("diff") if res.get("changed") else None
    out: list[str] = []
    for diff in diffs if isinstance(diffs, list) else [diffs] if isinstance(diffs, dict) else []:
        before, after = diff.get("before", ""), diff.get("after", "")
        if not isinstance(before, str) or not isinstance(after, str):
            continue  # e.g. the file module's {'state': ...}: the task line says enough
        out += difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            lineterm="",
            fromfile=str(diff.get("before_header", "before")),
            tofile=str(diff.get("after_header", "after")),
        )
    return out


@dataclass
class Summary:
    mode: Mode
    hosts: dict[str, Host] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        return self.hosts.setdefault(name, Host(name))

    def feed(self, event: dict[str, Any]) -> None:
        status = RUNNER_STATUS.get(event.get("event", ""))
        if status is None:
            return
        data = event.get("event_data", {})
        res = data.get("res") or {}
        host = self.host(str(data.get("host", "?")))
        task = str(data.get("task", ""))
        part = task_part(task)
        host.warnings += [str(w) for w in res.get("warnings") or () if str(w) not in host.warnings]
        if status == "unreachable":
            host.unreachable, host.error = True, f"unreachable: {result_message(res)}"
        elif task == DETECT_TASK and status == "ok":
            self._plan(host, res.get("plan") or {})
        elif part in PARTS and status in ("ok", "failed"):
            self._part(host.parts[part], status, res)
        elif status == "failed" and not host.error:
            host.error = f"{task}: {result_message(res)}"

    def _plan(self, host: Host, plan: dict[str, Any]) -> None:
        for name, entry in plan.items():
            if name not in host.parts or not isinstance(entry, dict):
                continue
            part = host.parts[name]
            action = entry.get("action")
            part.why = str(entry.get("reason", ""))
            if action == "skip":
                part.status = "skipped"
            elif action == "fail":
                part.status, part.failed = "refused", True
            else:
                part.status = "pending"

    def _part(self, part: Part, status: str, res: dict[str, Any]) -> None:
        if part.failed:
            return
        if status == "failed":
            part.status, part.why, part.failed = "failed", result_message(res), True
            return
        changed_word, same_word = WORDS[self.mode]
        if res.get("changed"):
            part.changed = True
            action = res.get("action")
            part.status = ACTION_WORDS[self.mode].get(action, changed_word)
        elif not part.changed:
            part.status = same_word

    def exit_failed(self) -> bool:
        """Any host failed; in verify mode also any part that is not in place."""
        if any(h.failed for h in self.hosts.values()):
            return True
        return self.mode is Mode.VERIFY and any(p.changed for h in self.hosts.values() for p in h.parts.values())

    def table(self) -> str:
        rows = [("HOST", "PART", "RESULT", "WHY")]
        for name in sorted(self.hosts):
            host = self.hosts[name]
            for part_name, part in host.parts.items():
                status = part.status
                if status == "pending":  # planned, but its task never reported
                    status = "not run"
                why = part.why
                if status == "not run" and host.error:
                    why = "host failed before this part"
                rows.append((name, part_name, status, why))
            if host.error:
                rows.append((name, "(host)", "failed", host.error))
            rows += [(name, "(host)", "warning", text) for text in host.warnings]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows
        )

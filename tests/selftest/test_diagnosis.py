"""The diagnosis tells the causes apart, from reports shaped like the probe's."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.selftest.reports import make_report
from zuul_k8s import schemas
from zuul_k8s.selftest import jobcheck, probe
from zuul_k8s.selftest.diagnosis import (
    FACT_OPS,
    JOB_PLAYBOOK,
    RULES,
    ZUUL_CONF_KEYS,
    Fact,
    Failed,
    Stderr,
    diagnose,
)

# bwrap's own messages (bubblewrap.c; the first three seen here under podman).
PROC_EPERM = "bwrap: Can't mount proc on /newroot/proc: Operation not permitted"
UID_MAP_EPERM = "bwrap: setting up uid map: Operation not permitted"
NO_NAMESPACE = (
    "bwrap: No permissions to create new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces. See <https://deb.li/bubblewrap> or "
    "<file:///usr/share/doc/bubblewrap/README.Debian.gz>."
)
NO_NAMESPACE_UPSTREAM = (
    "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces. On e.g. debian this can be enabled with "
    "'sysctl kernel.unprivileged_userns_clone=1'."
)
NAMESPACE_ENOSPC = "bwrap: Creating new namespace failed: No space left on device"
PROC_EACCES = "bwrap: Can't mount proc on /newroot/proc: Permission denied"
DEVPTS_EACCES = "bwrap: Can't mount devpts on /newroot/dev/pts: Permission denied"
SLAVE_EACCES = "bwrap: Failed to make / slave: Permission denied"
UID_MAP_EACCES = "bwrap: setting up uid map: Permission denied"
UNEXPECTED_CAPS = "bwrap: Unexpected capabilities but not setuid, old file caps config?"
CONTAINERD_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                   "SETGID", "SETPCAP", "SETUID"]
SELINUX = "system_u:system_r:container_t:s0:c123,c456"
APPARMOR = "cri-containerd.apparmor.d (enforce)"


def bwrap_failing(message: str, *checks: str) -> dict[str, str]:
    names = checks or ("bwrap.userns", "bwrap.executor")
    return {check: message for check in names} | {"zuul.bwrap": ""}


# (name, environment facts, failed checks -> stderr, rule ids, a phrase the first fix names)
SCENARIOS: list[tuple[str, dict[str, Any], dict[str, str], list[str], str]] = [
    ("proc masked", {"proc_masked": True, "proc_masked_paths": ["/proc/kcore"]},
     {"env.proc": "", **bwrap_failing(PROC_EPERM, "bwrap.proc", "bwrap.executor")},
     ["proc-masked"], "procMount: Unmasked"),
    ("no user namespace",
     {"own_user_namespace": False, "uid_map": [[0, 0, 4294967295]], "proc_masked": True,
      "proc_masked_paths": ["/proc/kcore"]},
     {"env.userns": "", "env.proc": "", **bwrap_failing(PROC_EPERM, "bwrap.proc",
                                                          "bwrap.executor")},
     ["no-userns"], "hostUsers: false"),
    ("root without SETFCAP", {"uid": 0, "gid": 0, "cap_eff": CONTAINERD_CAPS,
                              "cap_bnd": CONTAINERD_CAPS},
     bwrap_failing(UID_MAP_EPERM), ["root-without-setfcap"], "SETFCAP"),
    ("root without SETFCAP, no user namespace",
     {"uid": 0, "cap_bnd": CONTAINERD_CAPS, "own_user_namespace": False,
      "uid_map": [[0, 0, 4294967295]]},
     {"env.userns": "", **bwrap_failing(UID_MAP_EPERM)},
     ["no-userns", "root-without-setfcap"], "hostUsers: false"),
    ("seccomp RuntimeDefault", {"seccomp": "filter"}, bwrap_failing(NO_NAMESPACE),
     ["seccomp-refuses-namespaces"], "isolation.seccomp: Localhost"),
    ("seccomp, upstream bwrap wording", {"seccomp": "filter"},
     bwrap_failing(NO_NAMESPACE_UPSTREAM), ["seccomp-refuses-namespaces"], "Localhost"),
    ("unprivileged userns clone off", {"unprivileged_userns_clone": 0},
     {"env.userns-limit": "", **bwrap_failing(NO_NAMESPACE)}, ["userns-disabled"],
     "unprivileged_userns_clone=1"),
    ("max_user_namespaces 0", {"max_user_namespaces": 0},
     {"env.userns-limit": "", **bwrap_failing(NAMESPACE_ENOSPC)}, ["userns-disabled"],
     "user.max_user_namespaces"),
    ("SELinux denies proc", {"selinux_context": SELINUX},
     bwrap_failing(PROC_EACCES, "bwrap.proc", "bwrap.executor"), ["selinux-denies-mount"],
     "isolation.selinux: module"),
    ("SELinux denies devpts", {"selinux_context": SELINUX},
     bwrap_failing(DEVPTS_EACCES, "bwrap.dev", "bwrap.executor"), ["selinux-denies-mount"],
     "container_engine_t"),
    ("AppArmor denies mount", {"apparmor_profile": APPARMOR},
     bwrap_failing(SLAVE_EACCES, "bwrap.userns", "bwrap.executor"), ["apparmor-denies-mount"],
     "isolation.apparmor: Localhost"),
    ("AppArmor restricts user namespaces",
     {"apparmor_profile": APPARMOR, "apparmor_restrict_unprivileged_userns": 1},
     bwrap_failing(UID_MAP_EACCES), ["apparmor-userns-restricted"], "userns,"),
    ("bwrap missing", {"bwrap_path": None, "bwrap_version": None}, {"env.bwrap": ""},
     ["bwrap-missing"], "image"),
    ("bwrap too old", {"bwrap_version": "0.4.1"}, {"env.bwrap": ""}, ["bwrap-too-old"],
     "0.8.0"),
    ("kernel too old", {"kernel": "5.15.0-91-generic"}, {"env.kernel": ""},
     ["kernel-too-old"], "nodeSelector"),
    ("non-root with capabilities", {"cap_bnd": ["SETFCAP"], "cap_eff": ["SETFCAP"]},
     bwrap_failing(UNEXPECTED_CAPS), ["nonroot-with-capabilities"], "drop: [ALL]"),
    ("jobs keep capabilities", {}, {"isolation.capabilities": ""},
     ["job-holds-capabilities"], "drop: [ALL]"),
    ("root jobs keep the runtime's default capabilities",
     {"uid": 0, "gid": 0, "cap_eff": [*CONTAINERD_CAPS, "SETFCAP"],
      "cap_bnd": [*CONTAINERD_CAPS, "SETFCAP"]},
     {"isolation.capabilities": ""}, ["root-job-capabilities"], "add: [SETFCAP]"),
    ("a leak no rule knows", {}, {"isolation.pid": ""}, ["unexplained"], "kubectl exec"),
]


# The same, for what the zuul-k8s-selftest job reports from inside a build (jobcheck.py).
JOB_SCENARIOS: list[tuple[str, dict[str, Any], dict[str, str], list[str], str]] = [
    ("root executor with the runtime's default capabilities",
     {"uid": 0, "gid": 0, "cap_eff": [*CONTAINERD_CAPS, "SETFCAP"],
      "cap_bnd": [*CONTAINERD_CAPS, "SETFCAP"]},
     {"build.capabilities": ""}, ["root-job-capabilities"], "add: [SETFCAP]"),
    ("non-root build holds capabilities", {"cap_eff": ["NET_RAW"]}, {"build.capabilities": ""},
     ["job-holds-capabilities"], "user.uid: 10001"),
    ("zuul.conf's dir in untrusted_ro_paths", {}, {"build.zuul-conf": ""},
     ["executor-paths-exposed"], "[executor] untrusted_ro_paths"),
    ("the executor's /proc bound into builds", {},
     {"build.proc": "", "build.processes": "", "build.writes": ""},
     ["executor-paths-exposed"], "/proc"),
    ("a service-account token in reach", {}, {"build.sa-token": ""}, ["job-sees-token"],
     "automountServiceAccountToken: false"),
    ("no seccomp filter", {"seccomp": "disabled"}, {"build.seccomp": ""}, ["job-without-seccomp"],
     "isolation.seccomp: Localhost"),
    ("no --disable-userns", {"bwrap_version": "0.6.2"},
     {"build.uid-map": "", "build.nested-userns": ""},
     ["job-userns-not-bwraps"], "bubblewrap 0.8.0"),
    ("the job ran trusted", {}, {"build.context": ""}, ["job-runs-trusted"], "untrusted project"),
    ("no-new-privs missing", {"no_new_privs": False}, {"build.no-new-privs": ""},
     ["job-may-gain-privileges"], "allowPrivilegeEscalation: false"),
]


@pytest.mark.parametrize(("kind", "environment", "failures", "expected", "fix"),
                         [("probe", *s[1:]) for s in SCENARIOS]
                         + [("job", *s[1:]) for s in JOB_SCENARIOS],
                         ids=[s[0] for s in SCENARIOS] + ["job: " + s[0] for s in JOB_SCENARIOS])
def test_each_cause_is_told_apart(kind: str, environment: dict[str, Any], failures: dict[str, str],
                                  expected: list[str], fix: str) -> None:
    report = make_report(environment, failures, kind=kind)
    diagnoses = diagnose(report)
    assert [d.rule.id for d in diagnoses] == expected
    assert fix in diagnoses[0].rule.fix
    failed = {c["id"] for c in report["checks"] if c["status"] == "fail"}
    explained = {check for d in diagnoses for check in d.checks}
    assert failed == explained, "every failed check belongs to a cause"
    bwrap_lines = {line for line in failures.values() if line}
    assert bwrap_lines <= {e for d in diagnoses for e in d.evidence}


def test_a_passing_report_has_no_diagnosis() -> None:
    assert diagnose(make_report()) == []
    assert diagnose(make_report(kind="job")) == []


def test_a_job_failure_no_rule_knows_is_unexplained() -> None:
    report = make_report({}, {"build.other-builds": ""}, kind="job")
    report["checks"][[c["id"] for c in report["checks"]].index("build.other-builds")]["id"] = "build.future"
    assert [d.rule.id for d in diagnose(report)] == ["unexplained"]


def test_rules_name_real_checks_facts_and_fixes() -> None:
    check_ids = {check[0] for check in probe.CHECKS + jobcheck.CHECKS}
    facts = set(schemas.load("selftest-report.schema.json")["properties"]["environment"]
                ["properties"])
    assert len({rule.id for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.when, rule.id
        assert rule.bwrap_message and rule.cause and rule.fix, rule.id
        assert set(rule.also_explains) <= check_ids, rule.id
        for condition in rule.when:
            if isinstance(condition, Failed):
                assert set(condition.checks) <= check_ids, rule.id
            elif isinstance(condition, Stderr):
                re.compile(condition.pattern)
                assert set(condition.checks) <= check_ids, rule.id
            else:
                assert isinstance(condition, Fact)
                assert condition.name in facts and condition.op in FACT_OPS, rule.id


def test_rules_with_a_bwrap_message_match_it() -> None:
    """The message each row documents is one its own stderr patterns recognise."""
    for rule in RULES:
        patterns = [c.pattern for c in rule.when if isinstance(c, Stderr)]
        if rule.also_explains_stderr:
            patterns.append(rule.also_explains_stderr)
        if rule.bwrap_message.startswith("bwrap:") and patterns:
            assert any(re.search(p, rule.bwrap_message) for p in patterns), rule.id


def _config_keys() -> set[str]:
    """Every dotted key of the kit's config (`user.uid`, `isolation.seccomp`, ...)."""
    keys: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, prop in node.get("properties", {}).items():
            keys.add(prefix + name)
            for branch in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]:
                if isinstance(branch, dict):
                    walk(branch, prefix + name + ".")

    walk(schemas.load("config.schema.json"), "")
    return keys


# A node setting the kit's playbook does not make: the fix says so instead.
NODE_SETTING_RULES = {"userns-disabled"}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_every_fix_names_a_config_key_or_a_node_playbook(rule: Any) -> None:
    """What to change, by the name the user edits: a config key (`user.uid: 10001`), a
    field `zuul-k8s render` always sets, or the node playbook."""
    quoted = re.findall(r"`([a-zA-Z][\w.]*)(?::[^`]*)?`", rule.fix)
    names_key = any(key in _config_keys() for key in quoted)
    names_playbook = "playbooks/node-prepare.yaml" in rule.fix or JOB_PLAYBOOK in rule.fix
    names_render = "`zuul-k8s render`" in rule.fix
    # zuul.conf's own keys, for what zuul.conf exposes to builds: `[executor] untrusted_ro_paths`
    names_zuul_conf = any(f"`{key}`" in rule.fix for key in ZUUL_CONF_KEYS)
    if rule.id in NODE_SETTING_RULES:
        assert "sets no sysctl" in rule.fix and "playbooks/node-prepare.yaml" in rule.fix
        return
    assert names_key or names_playbook or names_render or names_zuul_conf, rule.fix


def test_config_keys_are_read_from_the_schema() -> None:
    keys = _config_keys()
    assert {"user.uid", "isolation.seccomp", "scheduling.nodeSelector", "image"} <= keys
    assert "user.nosuch" not in keys

#!/usr/bin/python
"""Ansible module: what a node has (SELinux, AppArmor, kernel, runtime, kubelet ids)
and, from that and the play's choices, what node preparation will do there."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_node_facts
short_description: Detect what a Kubernetes node needs to run Zuul executors unprivileged
description:
  - Reads, without changing anything, the node's SELinux state and policy type,
    AppArmor state and parser version, kernel release and architecture, the
    container runtime and its version (when its binary is visible to the node's
    shell), and the subordinate id range of a C(kubelet) user if one exists.
  - Returns a plan, one entry per part (selinux, seccomp, apparmor), saying
    whether to install it, skip it (and why) or fail (and why, with the fix), so
    the playbook stays a list of plain tasks and the decisions are unit-tested.
  - Warns (never fails) about a kernel older than 6.3, a runtime too old for
    user namespaces, and a kubelet subuid range too small for C(hostUsers=false).
options:
  selinux:
    description: V(auto) installs the module where SELinux is enabled; V(install)
      also into the policy store of a node where it is not (image builds, tests).
    type: str
    choices: [auto, install, skip]
    default: auto
  apparmor:
    description: V(auto) loads the profile where AppArmor is enabled; V(install)
      also writes (and compiles) it where it is not.
    type: str
    choices: [auto, install, skip]
    default: auto
  seccomp:
    description: Install the Localhost seccomp profile (every node needs it).
    type: str
    choices: [install, skip]
    default: install
  seccomp_arches:
    description: Architectures (C(uname -m)) the kit has a seccomp profile for.
    type: list
    elements: str
    default: [x86_64, aarch64]
  kubelet_max_pods:
    description: The kubelet's maxPods, to size the subuid range it needs.
    type: int
    default: 110
  purpose:
    description:
      - V(prepare) plans installing each part (actions V(install), V(skip), V(fail)).
      - V(cleanup) plans removing it (actions V(remove), V(skip), V(fail)); removing the
        seccomp profile needs no profile of the kit's, so no architecture is refused.
    type: str
    choices: [prepare, cleanup]
    default: prepare
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Detect the node
  zuul_node_facts:
    selinux: auto
  register: node
- name: Show the plan
  ansible.builtin.debug:
    var: node.plan
- name: Plan removing the parts instead
  zuul_node_facts:
    purpose: cleanup
  register: node
"""

RETURN = r"""
facts:
  description: What was found on the node.
  type: dict
  returned: always
  sample:
    arch: x86_64
    kernel: {release: 6.8.0-45-generic, version: [6, 8], userns_ok: true}
    selinux: {enabled: false, mode: disabled, policy: default, semodule: /usr/sbin/semodule}
    apparmor: {enabled: true, parser: /usr/sbin/apparmor_parser, version: 4.0.1, abi4: true}
    runtime: [{name: containerd, version: 2.0.1}]
    kubelet: {user: false}
plan:
  description: Per part, C(action) (install, skip, fail; with O(purpose=cleanup) remove,
    skip, fail) and C(reason); extra keys per part.
  type: dict
  returned: always
  sample:
    selinux: {action: skip, reason: SELinux is not enabled on this node}
    seccomp: {action: install, reason: every executor node needs it, arch: x86_64}
    apparmor: {action: install, reason: AppArmor is enabled, load: true, file: zuul-executor.abi4}
"""

import os  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# facts.md, "Node requirements for hostUsers: false": Linux 6.3+ (idmapped tmpfs).
MIN_KERNEL = (6, 3)
# Same source: runtimes that honour hostUsers: false. (name, argv, version regex, minimum, why)
RUNTIMES: tuple[tuple[str, tuple[str, ...], str, tuple[int, ...], str], ...] = (
    (
        "containerd",
        ("containerd", "--version"),
        r"\bv?(\d+\.\d+(?:\.\d+)?)",
        (2, 0),
        "containerd before 2.0 silently ignores hostUsers: false",
    ),
    (
        "cri-o",
        ("crio", "--version"),
        r"(\d+\.\d+\.\d+)",
        (1, 25),
        "CRI-O before 1.25 does not support user namespaces for pods",
    ),
    (
        "runc",
        ("runc", "--version"),
        r"runc version (\d+\.\d+(?:\.\d+)?)",
        (1, 2),
        "runc before 1.2 cannot run pods with hostUsers: false",
    ),
    (
        "crun",
        ("crun", "--version"),
        r"crun version (\d+\.\d+(?:\.\d+)?)",
        (1, 9),
        "crun before 1.9 cannot run pods with hostUsers: false",
    ),
)
# The kubelet maps 65536 ids per pod; its range starts at a multiple of 65536.
IDS_PER_POD = 65536


ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "selinux": {"type": "str", "choices": ["auto", "install", "skip"], "default": "auto"},
    "apparmor": {"type": "str", "choices": ["auto", "install", "skip"], "default": "auto"},
    "seccomp": {"type": "str", "choices": ["install", "skip"], "default": "install"},
    "seccomp_arches": {"type": "list", "elements": "str", "default": ["x86_64", "aarch64"]},
    "kubelet_max_pods": {"type": "int", "default": 110},
    "purpose": {"type": "str", "choices": ["prepare", "cleanup"], "default": "prepare"},
}


def version_tuple(text: str) -> tuple[int, ...]:
    found = re.match(r"(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in found.group(1).split(".")) if found else ()


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def kernel_facts(release: str) -> dict[str, Any]:
    version = version_tuple(release)[:2]
    return {"release": release, "version": list(version), "userns_ok": version >= MIN_KERNEL}


def selinux_facts(module: AnsibleModule) -> dict[str, Any]:
    # libselinux's is_selinux_enabled() looks for the mounted selinuxfs.
    enforce = read("/sys/fs/selinux/enforce")
    config = read("/etc/selinux/config") or ""
    policy = re.search(r"^\s*SELINUXTYPE\s*=\s*(\S+)", config, re.MULTILINE)
    return {
        "enabled": enforce is not None,
        "mode": {"1": "enforcing", "0": "permissive"}.get(enforce or "", "disabled"),
        "policy": policy.group(1) if policy else None,
        "semodule": module.get_bin_path("semodule"),
    }


def apparmor_facts(module: AnsibleModule) -> dict[str, Any]:
    parser = module.get_bin_path("apparmor_parser")
    version = None
    if parser:
        rc, out, _ = module.run_command([parser, "--version"])
        found = re.search(r"version (\d+(?:\.\d+)*)", out) if rc == 0 else None
        version = found.group(1) if found else None
    restrict = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    return {
        "enabled": read("/sys/module/apparmor/parameters/enabled") == "Y",
        "parser": parser,
        "version": version,
        # Ubuntu 24.04's AppArmor 4 ships this abi; the `userns,` rule needs it.
        "abi4": os.path.exists("/etc/apparmor.d/abi/4.0"),
        "restrict_unprivileged_userns": restrict == "1",
    }


def runtime_facts(module: AnsibleModule) -> list[dict[str, Any]]:
    found = []
    for name, argv, pattern, minimum, why in RUNTIMES:
        path = module.get_bin_path(argv[0])
        if not path:
            continue
        rc, out, err = module.run_command([path, *argv[1:]])
        match = re.search(pattern, out + err) if rc == 0 else None
        version = match.group(1) if match else None
        entry = {"name": name, "path": path, "version": version, "ok": None}
        if version:
            entry["ok"] = version_tuple(version) >= minimum
            if not entry["ok"]:
                entry["why"] = why
        found.append(entry)
    return found


def subid_range(text: str, user: str, uid: int) -> tuple[int, int] | None:
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)):
            try:
                return int(parts[1]), int(parts[2])
            except ValueError:
                return None
    return None


def kubelet_facts(max_pods: int) -> dict[str, Any]:
    try:
        entry = pwd.getpwnam("kubelet")
    except KeyError:
        return {"user": False}
    needed = IDS_PER_POD * max_pods
    facts: dict[str, Any] = {"user": True, "ids_needed": needed}
    for kind in ("subuid", "subgid"):
        found = subid_range(read(f"/etc/{kind}") or "", "kubelet", entry.pw_uid)
        if found is None:
            facts[kind] = None
            continue
        start, count = found
        facts[kind] = {
            "start": start,
            "count": count,
            "ok": start >= IDS_PER_POD and start % IDS_PER_POD == 0 and count >= needed,
        }
    return facts


def plan_selinux(mode: str, facts: dict[str, Any]) -> dict[str, Any]:
    if mode == "skip":
        return {"action": "skip", "reason": "zuul_k8s_selinux_module is skip"}
    if mode == "auto" and not facts["enabled"]:
        return {"action": "skip", "reason": "SELinux is not enabled on this node"}
    if not facts["semodule"]:
        why = "SELinux is enabled" if facts["enabled"] else "zuul_k8s_selinux_module is install"
        return {
            "action": "fail",
            "reason": f"{why} but semodule is not installed: install policycoreutils "
            "(Debian: semodule-utils), or set zuul_k8s_selinux_module: skip",
        }
    return {
        "action": "install",
        "reason": "SELinux is enabled" if facts["enabled"] else "requested (SELinux not enabled)",
        # Loading into the kernel only makes sense where SELinux runs.
        "reload": facts["enabled"],
    }


def plan_apparmor(mode: str, facts: dict[str, Any]) -> dict[str, Any]:
    if mode == "skip":
        return {"action": "skip", "reason": "zuul_k8s_apparmor is skip"}
    if mode == "auto" and not facts["enabled"]:
        return {"action": "skip", "reason": "AppArmor is not enabled on this node"}
    if not facts["parser"]:
        return {
            "action": "fail",
            "reason": "AppArmor is enabled but apparmor_parser is not installed: install "
            "apparmor (the package), or set zuul_k8s_apparmor: skip",
        }
    return {
        "action": "install",
        "reason": "AppArmor is enabled" if facts["enabled"] else "requested (AppArmor not enabled)",
        "load": facts["enabled"],
        # AppArmor 4 (abi/4.0 on the node) needs the `userns,` rule; 3.x rejects it.
        "file": "zuul-executor.abi4" if facts["abi4"] else "zuul-executor",
    }


def plan_seccomp(mode: str, arch: str, known: list[str], purpose: str = "prepare") -> dict[str, Any]:
    if mode == "skip":
        return {"action": "skip", "reason": "zuul_k8s_seccomp is skip"}
    if purpose == "cleanup" and arch not in known:
        # Removing the file needs no profile of the kit's: nothing to refuse.
        return {"action": "install", "reason": "removing needs no profile of the kit's", "arch": arch}
    if arch not in known:
        return {
            "action": "fail",
            "reason": f"the kit has no seccomp profile for architecture {arch} "
            f"(it has: {', '.join(known)}); set zuul_k8s_seccomp: skip on this node",
        }
    return {"action": "install", "reason": "every executor node needs it", "arch": arch}


def for_purpose(plan: dict[str, dict[str, Any]], purpose: str) -> dict[str, dict[str, Any]]:
    """The plan in the words of the playbook that reads it: cleanup removes what prepare installs."""
    if purpose != "cleanup":
        return plan
    return {part: {**entry, "action": "remove"} if entry["action"] == "install" else entry
            for part, entry in plan.items()}


def warnings_for(facts: dict[str, Any]) -> list[str]:
    out = []
    if not facts["kernel"]["userns_ok"]:
        out.append(
            f"kernel {facts['kernel']['release']} is older than 6.3: pods with "
            "hostUsers: false need idmapped tmpfs mounts (Linux 6.3+)"
        )
    for runtime in facts["runtime"]:
        if runtime["ok"] is False:
            out.append(f"{runtime['name']} {runtime['version']}: {runtime['why']}")
    kubelet = facts["kubelet"]
    for kind in ("subuid", "subgid"):
        entry = kubelet.get(kind) if kubelet["user"] else {"ok": True}
        if entry is None:
            out.append(f"user kubelet exists but has no /etc/{kind} entry")
        elif not entry["ok"]:
            out.append(
                f"kubelet's /etc/{kind} range {entry['start']}:{entry['count']} must start at a "
                f"multiple of 65536 (>= 65536) and hold {kubelet['ids_needed']} ids"
            )
    return out


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    uname = os.uname()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(uname.machine, uname.machine)
    facts = {
        "arch": arch,
        "kernel": kernel_facts(uname.release),
        "selinux": selinux_facts(module),
        "apparmor": apparmor_facts(module),
        "runtime": runtime_facts(module),
        "kubelet": kubelet_facts(params["kubelet_max_pods"]),
    }
    purpose = params["purpose"]
    plan = for_purpose({
        "selinux": plan_selinux(params["selinux"], facts["selinux"]),
        "seccomp": plan_seccomp(params["seccomp"], arch, params["seccomp_arches"], purpose),
        "apparmor": plan_apparmor(params["apparmor"], facts["apparmor"]),
    }, purpose)
    for warning in warnings_for(facts):
        module.warn(warning)
    module.exit_json(changed=False, facts=facts, plan=plan)


if __name__ == "__main__":
    main()

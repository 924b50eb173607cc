#!/usr/bin/python
"""Ansible module: install or remove one SELinux policy module, only when needed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_selinux_module
short_description: Install or remove a CIL SELinux policy module, only when it differs
description:
  - Installs a policy module written in CIL with C(semodule -i), but only when the
    store does not hold exactly that content already. Every C(semodule -i) rebuilds
    the whole policy (several seconds), so skipping it is the point of this module.
  - The installed module is read back from the store itself (C(semodule -E NAME -c)),
    so the comparison needs no state file that could go stale. Content is compared
    by SHA-256 and by the version of the module's C(; version) comment line. The
    module is current only when both match; a different version is an upgrade, the
    same version with other content a replacement (a version bump was forgotten).
  - With O(reload=false), C(semodule -n) builds the store without loading the policy
    into the kernel, which is right for nodes (or image builds) where SELinux is not enabled.
options:
  name:
    description: Module name as the store lists it.
    type: str
    required: true
  content:
    description: The module's CIL text. Required when O(state=present).
    type: str
  state:
    description: Whether the module should be installed.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description: Load the rebuilt policy into the kernel (C(semodule) without C(-n)).
    type: bool
    default: true
  semodule:
    description: The semodule program, looked up on PATH (and the sbin dirs).
    type: str
    default: semodule
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Install the kit's module
  zuul_selinux_module:
    name: zuul_executor_bwrap
    content: "{{ lookup('ansible.builtin.file', 'zuul_executor_bwrap.cil') }}"
    reload: "{{ ansible_selinux.status == 'enabled' }}"

- name: Remove it
  zuul_selinux_module:
    name: zuul_executor_bwrap
    state: absent
"""

RETURN = r"""
action:
  description: What was done (or would be, in check mode).
  type: str
  returned: always
  sample: installed
  choices: [installed, upgraded, replaced, unchanged, removed, absent]
version:
  description: Version of the wanted module (from its C(; version:) comment).
  type: str
  returned: when state is present
  sample: 1.0.0
installed_version:
  description: Version of the module the store held before, if any.
  type: str
  returned: always
  sample: 0.9.0
sha256:
  description: SHA-256 of the wanted module's content.
  type: str
  returned: when state is present
installed_sha256:
  description: SHA-256 of the content the store held before, if any.
  type: str
  returned: always
"""

import hashlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "content": {"type": "str"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "reload": {"type": "bool", "default": True},
    "semodule": {"type": "str", "default": "semodule"},
}
VERSION_LINE = re.compile(r"^\s*;+\s*version:\s*(\S+)\s*$", re.MULTILINE)


def module_version(content: str) -> str | None:
    found = VERSION_LINE.search(content)
    return found.group(1) if found else None


def sha256(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def decide(wanted: str | None, installed: str | None, state: str) -> str:
    """The action for a wanted and an installed content (None: none)."""
    if state == "absent":
        return "removed" if installed is not None else "absent"
    if installed is None:
        return "installed"
    same_version = module_version(installed) == module_version(wanted or "")
    # Current means both: the same declared version and the same content. (The
    # version line is part of the content, so a same hash implies a same version;
    # both are compared so that neither alone can ever pass for current.)
    if same_version and sha256(installed) == sha256(wanted or ""):
        return "unchanged"
    return "replaced" if same_version else "upgraded"


def installed_content(module: AnsibleModule, semodule: str, name: str) -> str | None:
    """The CIL the store holds for `name`, or None when it holds no such module."""
    rc, out, err = module.run_command([semodule, "--list-modules=full"])
    if rc != 0:
        module.fail_json(msg=f"semodule cannot list the store: {(err or out).strip()}")
    names = {line.split()[1] for line in out.splitlines() if len(line.split()) >= 2}
    if name not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="zuul-k8s-selinux-") as tmp:
        # semodule -E writes NAME.cil into the current directory.
        rc, out, err = module.run_command([semodule, "-E", name, "-c"], cwd=tmp)
        path = os.path.join(tmp, f"{name}.cil")
        if rc != 0 or not os.path.exists(path):
            module.fail_json(msg=f"semodule cannot extract module {name}: {(err or out).strip()}")
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


def failure_message(output: str) -> str:
    """semodule's failure in one first line (what a summary shows), the hint on it; then the rest."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()] or ["no output"]
    hint = ""
    if "resolve" in lines[0].lower():
        hint = (" (this node's policy lacks a type the module names: container_t comes with "
                "container-selinux, or refpolicy's container module)")
    return "\n".join([f"semodule failed: {lines[0]}{hint}", *lines[1:]])


def describe(content: str | None) -> str:
    if content is None:
        return "(not installed)\n"
    return f"version {module_version(content) or '?'}, sha256 {sha256(content)}\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["content"])],
        supports_check_mode=True,
    )
    params = module.params
    name, state = params["name"], params["state"]
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        module.fail_json(msg=f"name {name!r}: SELinux module names are letters, digits and _")
    wanted = params["content"] if state == "present" else None
    if wanted is not None and module_version(wanted) is None:
        module.fail_json(msg="content has no '; version: X' comment line; add one")
    semodule = module.get_bin_path(params["semodule"])
    if semodule is None:
        module.fail_json(
            msg="semodule not found: install policycoreutils (Debian: semodule-utils), "
            "or skip the SELinux module on this node (zuul_k8s_selinux_module: skip)"
        )

    installed = installed_content(module, semodule, name)
    action = decide(wanted, installed, state)
    changed = action not in ("unchanged", "absent")
    result = {
        "changed": changed,
        "action": action,
        "installed_version": module_version(installed) if installed else None,
        "installed_sha256": sha256(installed) if installed else None,
        "diff": {
            "before_header": f"selinux module {name}",
            "after_header": f"selinux module {name}",
            "before": describe(installed),
            "after": describe(wanted),
        },
    }
    if wanted is not None:
        result.update(version=module_version(wanted), sha256=sha256(wanted))
    if not changed or module.check_mode:
        module.exit_json(**result)

    command = [semodule] + ([] if params["reload"] else ["-n"])
    if state == "absent":
        rc, out, err = module.run_command([*command, "-r", name])
    else:
        with tempfile.TemporaryDirectory(prefix="zuul-k8s-selinux-") as tmp:
            path = os.path.join(tmp, f"{name}.cil")  # semodule names the module by file
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(wanted or "")
            rc, out, err = module.run_command([*command, "-i", path])
    if rc != 0:
        # semodule works in a transaction: a failure leaves the store as it was.
        module.fail_json(msg=failure_message(err or out), rc=rc, stderr=err, stdout=out,
                         **{**result, "changed": False})
    module.exit_json(**result)


if __name__ == "__main__":
    main()

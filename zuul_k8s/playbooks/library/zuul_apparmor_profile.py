#!/usr/bin/python
"""Ansible module: put an AppArmor profile on a node, checked, and load it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_apparmor_profile
short_description: Install (compile-checked) and load, or unload and remove, an AppArmor profile
description:
  - Compiles the profile with C(apparmor_parser -Q -K) before it touches
    C(/etc/apparmor.d), so a profile the node's parser rejects is never left where
    the boot-time AppArmor service would trip over it.
  - With O(load=true), loads it with C(apparmor_parser -r) when the file changed
    or the kernel does not list the profile; C(changed) is true only then.
  - The content must declare a profile named O(name), since that is the name the
    kernel lists and what tells whether it is loaded.
options:
  name:
    description: Profile name (what pods name as C(localhostProfile)).
    type: str
    required: true
  content:
    description: The profile text. Required when O(state=present).
    type: str
  dest:
    description: Where the profile file lives. Default C(/etc/apparmor.d/NAME).
    type: path
  state:
    description: Whether the profile should be installed.
    type: str
    choices: [present, absent]
    default: present
  load:
    description: Load into (or unload from) the kernel. Needs AppArmor enabled.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Load the executor's profile
  zuul_apparmor_profile:
    name: zuul-executor
    content: "{{ lookup('ansible.builtin.file', 'zuul-executor') }}"

- name: Write and compile it where AppArmor is not enabled (an image build), without loading
  zuul_apparmor_profile:
    name: zuul-executor
    content: "{{ lookup('ansible.builtin.file', 'zuul-executor') }}"
    dest: /srv/image/etc/apparmor.d/zuul-executor
    load: false

- name: Unload and remove it
  zuul_apparmor_profile:
    name: zuul-executor
    state: absent
"""

RETURN = r"""
action:
  description: What was done (or would be, in check mode).
  type: str
  returned: always
  choices: [installed, updated, loaded, unchanged, removed, absent]
  sample: installed
dest:
  description: The profile file.
  type: str
  returned: always
  sample: /etc/apparmor.d/zuul-executor
"""

import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "content": {"type": "str"},
    "dest": {"type": "path"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "load": {"type": "bool", "default": True},
}
# `profile NAME [flags] {` or a bare `NAME {` / `/path/to/binary {` at the start of a line.
PROFILE_HEADER = re.compile(r"^\s*(?:profile\s+)?(\S+)\s+(?:flags\s*=\s*\([^)]*\)\s*)?\{", re.MULTILINE)
LOADED_PROFILES = "/sys/kernel/security/apparmor/profiles"
REMOVE_PROFILE = "/sys/kernel/security/apparmor/.remove"


def loaded(name: str, listing: str | None) -> bool:
    """Whether the kernel's profile list (`NAME (mode)` lines) holds `name`."""
    return any(line.rsplit(" (", 1)[0] == name for line in (listing or "").splitlines())


def declared_names(content: str) -> list[str]:
    """The names of the top-level profiles a profile text declares."""
    names, depth = [], 0
    for line in content.splitlines():
        code = line.split("#", 1)[0]
        found = PROFILE_HEADER.match(code)
        if found and depth == 0:
            names.append(found.group(1).strip('"'))
        depth += code.count("{") - code.count("}")
    return names


def decide(wanted: str | None, current: str | None, is_loaded: bool, load: bool) -> str:
    if wanted is None:
        return "removed" if current is not None or (load and is_loaded) else "absent"
    if current is None:
        return "installed"
    if current != wanted:
        return "updated"
    if load and not is_loaded:
        return "loaded"
    return "unchanged"


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["content"])],
        supports_check_mode=True,
    )
    params = module.params
    name, load = params["name"], params["load"]
    if not re.fullmatch(r"[A-Za-z0-9_][-A-Za-z0-9_.]*", name):
        module.fail_json(msg=f"name {name!r}: use letters, digits, '-', '_' and '.'")
    dest = params["dest"] or f"/etc/apparmor.d/{name}"
    wanted = params["content"] if params["state"] == "present" else None
    if wanted is not None and not wanted.endswith("\n"):
        wanted += "\n"
    if wanted is not None and name not in declared_names(wanted):
        # The kernel would list the profile under another name: it would never be
        # seen as loaded, and every run would reload it and report a change.
        declared = ", ".join(declared_names(wanted)) or "none"
        module.fail_json(msg=f"content declares no profile named {name} (it declares: {declared}); "
                         "the name must be the profile's own")
    parser = module.get_bin_path("apparmor_parser", required=wanted is not None or load)
    current = read(dest)
    is_loaded = loaded(name, read(LOADED_PROFILES)) if load else False
    action = decide(wanted, current, is_loaded, load)
    result = {
        "changed": action not in ("unchanged", "absent"),
        "action": action,
        "dest": dest,
        "diff": {"before": current or "", "after": wanted or "", "before_header": dest, "after_header": dest},
    }

    touched = []  # what was changed on the node before a failure: reported as changed

    def run(*args: str) -> None:
        rc, out, err = module.run_command([parser, *args])
        if rc != 0:
            module.fail_json(msg=f"apparmor_parser {' '.join(args)}: {(err or out).strip()}",
                             **{**result, "changed": bool(touched)})

    if wanted is not None:
        # Compile-check even when nothing changes, so `verify` also proves the
        # node's parser accepts the profile.
        with tempfile.NamedTemporaryFile("w", suffix=f".{name}", encoding="utf-8") as tmp:
            tmp.write(wanted)
            tmp.flush()
            run("-Q", "-K", tmp.name)
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)

    if wanted is None:
        if load and is_loaded and current is not None:
            run("-R", dest)
        elif load and is_loaded:  # loaded, but its file is gone: unload by name
            with open(REMOVE_PROFILE, "w", encoding="utf-8") as handle:
                handle.write(name)
        if current is not None:
            os.unlink(dest)
        module.exit_json(**result)
    if current != wanted:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(wanted)
        os.chmod(tmp_path, 0o644)
        module.atomic_move(tmp_path, dest)
        touched.append(dest)
    if load:
        run("-r", dest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

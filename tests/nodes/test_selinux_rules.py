"""The SELinux module's rules are pinned to its declared version: a rule change must bump it.

Nodes compare the installed module with the kit's (zuul_selinux_module: same
version and same SHA-256 means current). A rule change without a version bump
still reinstalls (the content differs) but is reported as `replaced` under the
old version, so nobody can tell from `semodule -l` or the version which rules
a node has. This pin makes the change and the bump go together.
"""

from __future__ import annotations

import hashlib

from tests.nodes.helpers import load_module
from zuul_k8s import profiles

selinux = load_module("zuul_selinux_module")
CIL = profiles.selinux_module_path()

# (declared version, SHA-256 of the rules): update both together, and only with a bump.
PINNED = ("1.0.0", "49a6dc1632dcff986c979d90175b792c9dca47cee4399b905bd0491400c6f4f1")


def rules(text: str) -> str:
    """The CIL without comments and blank lines: what the policy is made of."""
    lines = (line.split(";", 1)[0].strip() for line in text.splitlines())
    return "".join(line + "\n" for line in lines if line)


def rules_sha256(text: str) -> str:
    return hashlib.sha256(rules(text).encode("utf-8")).hexdigest()


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def pin_problem(text: str, pinned: tuple[str, str] = PINNED) -> str | None:
    """What is wrong with the module against the pin, as the message to act on; None: nothing."""
    version, digest = selinux.module_version(text), rules_sha256(text)
    if version is None:
        return f"{CIL.name} has no '; version: X.Y.Z' line; nodes need it to tell versions apart"
    if (version, digest) == pinned:
        return None
    if version == pinned[0]:
        return (f"the rules of {CIL.name} changed but its version did not: bump the "
                f"'; version: {version}' line, then pin the new version and rules in "
                f"tests/nodes/test_selinux_rules.py: PINNED = (NEW_VERSION, {digest!r})")
    if version_key(version) <= version_key(pinned[0]):
        return f"{CIL.name}: version {version} is not above the pinned {pinned[0]}; versions only go up"
    return (f"{CIL.name} is now version {version}: pin it in tests/nodes/test_selinux_rules.py: "
            f"PINNED = ({version!r}, {digest!r})")


def test_the_shipped_module_matches_its_pin() -> None:
    problem = pin_problem(CIL.read_text(encoding="utf-8"))
    assert problem is None, problem


def test_a_rule_change_without_a_bump_is_caught() -> None:
    text = CIL.read_text(encoding="utf-8")
    changed = text + "(allow container_t sysfs_t (filesystem (mount)))\n"
    problem = pin_problem(changed)
    assert problem is not None and "bump the '; version: 1.0.0' line" in problem


def test_comments_may_change_without_a_bump() -> None:
    text = CIL.read_text(encoding="utf-8")
    assert pin_problem(text.replace("; Nothing else:", "; Nothing more:")) is None


def test_a_bump_asks_for_the_new_pin_and_never_goes_down() -> None:
    text = CIL.read_text(encoding="utf-8")
    bumped = text.replace("; version: 1.0.0", "; version: 1.1.0") + "(allow a b (c (d)))\n"
    problem = pin_problem(bumped)
    assert problem is not None and "PINNED = ('1.1.0', " in problem
    lowered = text.replace("; version: 1.0.0", "; version: 0.9.0") + "(allow a b (c (d)))\n"
    assert "versions only go up" in (pin_problem(lowered) or "")


def test_nodes_reinstall_on_a_rule_change_and_call_a_bump_an_upgrade() -> None:
    """The module's comparison: current only when version and content both match."""
    text = CIL.read_text(encoding="utf-8")
    edited = text + "(allow container_t sysfs_t (filesystem (mount)))\n"
    bumped = edited.replace("; version: 1.0.0", "; version: 1.1.0")
    assert selinux.decide(text, text, "present") == "unchanged"
    assert selinux.decide(edited, text, "present") == "replaced"
    assert selinux.decide(bumped, text, "present") == "upgraded"
    # Same rules, other version: not current either.
    assert selinux.decide(text.replace("1.0.0", "1.0.1"), text, "present") == "upgraded"

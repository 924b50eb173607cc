"""Every profile file the package's docstring and docs/nodes.md name exists, and every file is named."""

from __future__ import annotations

import re

from tests.tools import REPO
from zuul_k8s import profiles

NODES_MD = REPO / "docs" / "nodes.md"


def shipped() -> set[str]:
    """The selinux/ and apparmor/ files, relative to the profiles dir."""
    return {str(p.relative_to(profiles.PROFILES_DIR)) for kind in ("selinux", "apparmor")
            for p in (profiles.PROFILES_DIR / kind).iterdir() if p.is_file()}


def test_the_package_docstring_names_the_files_it_ships() -> None:
    doc = profiles.__doc__ or ""
    named = {m.rstrip(":,.") for m in re.findall(r"\b(?:selinux|apparmor)/[\w.-]+", doc)}
    assert named == shipped(), f"profiles/__init__.py names {sorted(named)}, ships {sorted(shipped())}"


def test_docs_nodes_md_names_the_files_it_ships() -> None:
    text = NODES_MD.read_text(encoding="utf-8")
    for name in shipped():
        assert f"`{name.split('/')[-1]}`" in text or f"zuul_k8s/profiles/{name}`" in text, (
            f"docs/nodes.md does not name {name}")
    for word in re.findall(r"`(zuul-executor\.[\w]+)`", text):
        assert f"apparmor/{word}" in shipped(), f"docs/nodes.md names {word}: no such profile file"


def test_profile_paths_resolve() -> None:
    assert profiles.apparmor_profile_path().is_file()
    assert profiles.apparmor_profile_path(abi4=True).name == "zuul-executor.abi4"
    assert profiles.apparmor_profile_path(abi4=True).is_file()
    assert profiles.selinux_module_path().is_file()

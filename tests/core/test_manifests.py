"""manifests/ and README.md are generated; these tests catch drift and say how to regenerate."""

from __future__ import annotations

from pathlib import Path

from tests.core.helpers import zuul_k8s
from tests.tools import REPO
from zuul_k8s import config_reference
from zuul_k8s.config import load_config
from zuul_k8s.manifests import kustomize_base
from zuul_k8s.render import render


def test_manifests_directory_matches_the_renderer() -> None:
    expected = kustomize_base(render(load_config(None)))
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "manifests").glob("*.yaml")}
    assert on_disk == expected, (
        "manifests/ drifted from the renderer; regenerate it with: zuul-k8s render -o manifests"
    )


def test_readme_config_reference_matches_the_schema() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert config_reference.markdown() in readme, (
        "README.md's config reference drifted from schemas/config.schema.json; regenerate it with: "
        "python -m zuul_k8s.config_reference --write README.md"
    )


def test_render_to_directory_replaces_only_its_own_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "base"
    assert zuul_k8s("render", "-c", "-", "-o", str(out), stdin="workload: {kind: StatefulSet}\n").returncode == 0
    (out / "mine.yaml").write_text("kind: ConfigMap\n")
    result = zuul_k8s("render", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "deployment.yaml", "kustomization.yaml", "mine.yaml", "namespace.yaml", "networkpolicy.yaml",
        "poddisruptionbudget.yaml", "service.yaml", "serviceaccount.yaml",
    ]


def test_render_refuses_to_write_invalid_output(tmp_path: Path) -> None:
    out = tmp_path / "base"
    # Pod Security baseline (v1.35) denies an Unconfined seccomp profile.
    result = zuul_k8s("render", "-c", "-", "-o", str(out), stdin="isolation: {seccomp: Unconfined}\n")
    assert result.returncode == 1
    assert "seccompProfile" in result.stderr
    assert "refusing to write" in result.stderr
    assert not out.exists()


def test_init_writes_a_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "zuul-k8s.yaml"
    assert zuul_k8s("init", str(target)).returncode == 0
    assert load_config(str(target)).data == load_config(None).data
    assert target.read_text().startswith("# zuul-k8s config")
    again = zuul_k8s("init", str(target))
    assert again.returncode == 2
    assert "exists already; pass --force" in again.stderr
    target.write_text("changed")
    assert zuul_k8s("init", "--force", str(target)).returncode == 0
    assert target.read_text().startswith("# zuul-k8s config")


def test_init_default_path(tmp_path: Path) -> None:
    assert zuul_k8s("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "zuul-k8s.yaml").is_file()


def test_render_to_directory_is_the_same_whatever_the_directory_is_called(tmp_path: Path) -> None:
    """The header names no path: a base rendered elsewhere, or renamed, does not drift."""
    bases = [tmp_path / "manifests", tmp_path / "deploy" / "zuul" / "base"]
    for out in bases:
        result = zuul_k8s("render", "-o", str(out))
        assert result.returncode == 0, result.stderr
    contents = [{p.name: p.read_bytes() for p in out.iterdir()} for out in bases]
    assert contents[0] == contents[1]
    assert not any(str(tmp_path).encode() in text for text in contents[0].values())

"""Writing rendered objects: a YAML stream, or a kustomize base in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zuul_k8s import yamlio
from zuul_k8s.errors import Problem, UserError

# No path in the header: the same config gives the same bytes whatever the
# directory is called (and wherever it is), so a moved or renamed base does not drift.
HEADER = "# Rendered by zuul-k8s; do not edit: change the config and run `zuul-k8s render -o DIR` again.\n"
KUSTOMIZATION = "kustomization.yaml"


def file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}.yaml"


def kustomize_base(objects: list[dict[str, Any]]) -> dict[str, str]:
    """File name -> content of a kustomize base holding the objects (pure)."""
    files = {file_name(obj): HEADER + yamlio.dump(obj) for obj in objects}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    files[KUSTOMIZATION] = HEADER + yamlio.dump(kustomization)
    return files


def write_base(objects: list[dict[str, Any]], directory: str) -> list[str]:
    """Write the base; remove files an earlier render wrote that are no longer wanted."""
    root = Path(directory)
    files = kustomize_base(objects)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob("*.yaml"):
            if stale.name not in files and stale.read_text(encoding="utf-8").startswith(HEADER[:30]):
                stale.unlink()
        for name, content in files.items():
            (root / name).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UserError(Problem(directory, "", f"cannot write: {exc.strerror}")) from None
    return sorted(files)

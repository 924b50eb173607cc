"""The kit's Python files as their other users see them: an Ansible module loaded
or run the way Ansible runs it (a process given its JSON arguments), and the
top-level packages a file imports (the probe and the job checker must need the
standard library only)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.tools import REPO


def load(path: Path) -> Any:
    """`path` imported as a module of its own name (e.g. to read DOCUMENTATION and ARGUMENT_SPEC)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_ansible_module(path: Path, args: dict[str, Any], *, unset: tuple[str, ...] = (),
                       timeout: float = 300) -> dict[str, Any]:
    """The module's JSON answer to `args`, run as Ansible runs it; environment variables
    in `unset` removed first."""
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, str(path), json.dumps({"ANSIBLE_MODULE_ARGS": args})],
                            capture_output=True, text=True, env=env, timeout=timeout)
    try:
        return dict(json.loads(result.stdout))
    except ValueError:
        raise AssertionError(result.stdout + result.stderr) from None


def top_level_imports(path: Path, feature_version: tuple[int, int] | None = None) -> set[str]:
    """The top-level packages `path` imports (absolute imports only), parsed as that Python."""
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=feature_version)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    return imported

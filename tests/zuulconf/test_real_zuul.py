"""The kit reads zuul.conf as Zuul 14.3.0 itself does: its own readConfig and get_default, from PyPI.

A script in the Zuul venv the end-to-end tests use (tests/e2e/zuulvenv.py) reads
each file with `ZuulApp.readConfig` under a given environment and reports, per
key, the value Zuul gets or the exception it raises; the kit's reading of the
same file with the same environment must agree on every key.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import zuulvenv
from zuul_k8s.errors import UserError
from zuul_k8s.zuulconf import load, lookup

ZUUL_READS = """
import json, sys
from argparse import Namespace
import zuul.cmd
from zuul.lib.config import get_default

class App(zuul.cmd.ZuulApp):
    app_name = "executor"
    app_description = "reads zuul.conf"

def reads(path):
    app = App()
    app.args = Namespace(config=path)
    try:
        app.readConfig()
    except Exception as exc:
        return {"read": type(exc).__name__}
    out = {}
    for section in app.config.sections():
        for key in app.config[section]:
            try:
                out[f"{section}.{key}"] = ["ok", get_default(app.config, section, key)]
            except Exception as exc:
                out[f"{section}.{key}"] = ["error", type(exc).__name__]
    return out

print(json.dumps({path: reads(path) for path in sys.argv[1:]}))
"""

ENV = {"ZUUL_EXECUTOR_HOSTNAME": "10.0.0.7", "ZUUL_KEYS": "/var/lib/zuul/.ssh", "NOT_ZUUL": "x"}
CASES = {
    "interpolation": (
        "[executor]\nhostname=%(ZUUL_EXECUTOR_HOSTNAME)s\nlower=%(zuul_executor_hostname)s\n"
        "private_key_file=%(ZUUL_KEYS)s/id_rsa\nbase=/srv\ngit_dir=%(base)s/git\n"
        "[keystore]\npassword=50%%off\n"
    ),
    "errors": (
        "[executor]\nmissing=%(ZUUL_NOT_SET)s\nother=%(NOT_ZUUL)s\nlone=50%off\ndangling=%(nothing)s\n"
        "loop=%(loop)s\n[connection x]\ndriver=git\ninline=9091 # a comment\n"
    ),
    "continuation": "[executor]\nvariables=/a\n  /b\nempty=\n",
}
BROKEN = {
    "duplicate-option": "[executor]\na=1\na=2\n",
    "duplicate-section": "[executor]\n[executor]\n",
    "no-section": "a=1\n",
    "no-value": "[executor]\nlonely\n",
}


@pytest.fixture(scope="module")
def zuul_read(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """name -> what Zuul read from that case's file (one Zuul process for all of them)."""
    folder = tmp_path_factory.mktemp("zuul-conf")
    paths = {}
    for name, text in {**CASES, **BROKEN}.items():
        paths[name] = folder / f"{name}.conf"
        paths[name].write_text(text)
    python = zuulvenv.ensure() / "bin" / "python"
    result = subprocess.run([str(python), "-c", ZUUL_READS, *map(str, paths.values())], capture_output=True,
                            text=True, timeout=300, env={**ENV, "PATH": "/usr/bin:/bin"}, check=True)
    read = json.loads(result.stdout)
    return {name: read[str(path)] for name, path in paths.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_failures_agree_with_zuul(zuul_read: dict[str, dict[str, Any]], tmp_path: Path,
                                             name: str) -> None:
    path = tmp_path / "zuul.conf"
    path.write_text(CASES[name])
    theirs = zuul_read[name]
    conf = load(path.read_bytes(), "zuul.conf")
    parser = conf.parser(ENV)
    defined = {k.lower() for k in ENV if k.startswith("ZUUL_")}
    ours = {}
    for section in conf.sections():
        for key in conf.options(section):
            value = lookup(parser, section, key, defined)
            ours[f"{section}.{key}"] = ["error", ""] if value.problem else ["ok", value.text]
    theirs_own = {k: v for k, v in theirs.items() if k.split(".", 1)[1] not in {e.lower() for e in ENV}}
    assert {k: v[0] for k, v in ours.items()} == {k: v[0] for k, v in theirs_own.items()}
    assert {k: v[1] for k, v in ours.items() if v[0] == "ok"} == {
        k: v[1] for k, v in theirs_own.items() if v[0] == "ok"}
    assert any(v[0] == "error" for v in theirs_own.values()) == (name == "errors")


@pytest.mark.parametrize("name", list(BROKEN))
def test_files_zuul_cannot_read_are_refused(zuul_read: dict[str, dict[str, Any]], name: str) -> None:
    assert "read" in zuul_read[name]
    with pytest.raises(UserError):
        load(BROKEN[name].encode(), "zuul.conf")

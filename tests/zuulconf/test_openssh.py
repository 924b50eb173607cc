"""The key-mode rules agree with the real ssh-add, for files laid out as the kubelet lays out a Secret.

The kubelet writes a Secret's files owned by root; with an fsGroup it chgrps them
to the group and adds 0440 (pkg/volume/volume_linux.go). Here the same file is
made with those owner, group and mode bits, and OpenSSH's ssh-add (under a
throw-away ssh-agent) runs as the executor's uid and groups.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import ON_CI, require_tool
from tests.zuulconf.helpers import Obj, check, fitting, objects, patched

DEFAULT = objects()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory any uid may enter (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0:
        message = "needs root to give the key file another owner and run ssh-add as uid 10001"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    path = Path(tempfile.mkdtemp(prefix="zuul-k8s-ssh-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize(("uid", "fs_group", "mode"), [
    (0, 10001, 0o400),  # the root executor: fsGroup makes the key 0440
    (0, None, 0o400),
    (0, None, 0o440),
    (10001, 10001, 0o440),
    (10001, 10001, 0o400),  # fsGroup adds g+r
    (10001, None, 0o400),  # root's file, no group: unreadable
])
def test_the_check_says_what_ssh_add_does(shared_dir: Path, uid: int, fs_group: int | None, mode: int) -> None:
    ssh_add, keygen = require_tool("ssh-add"), require_tool("ssh-keygen")
    agent, setpriv = require_tool("ssh-agent"), require_tool("setpriv")
    key = shared_dir / "id_rsa"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    group = 0 if fs_group is None else fs_group
    os.chown(key, 0, group)
    key.chmod(mode | (0o440 if fs_group is not None else 0))
    run_as = [] if uid == 0 else [setpriv, f"--reuid={uid}", f"--regid={uid}",
                                  f"--groups={','.join(str(g) for g in {uid, group})}"]
    result = subprocess.run([*run_as, agent, ssh_add, str(key)], capture_output=True, text=True, timeout=30)
    accepted = result.returncode == 0

    def pod(spec: Obj, c: Obj) -> None:
        spec["securityContext"]["runAsUser"] = uid
        spec["securityContext"]["runAsGroup"] = uid
        spec["securityContext"].pop("runAsNonRoot", None)
        spec["securityContext"].pop("fsGroup", None)
        if fs_group is not None:
            spec["securityContext"]["fsGroup"] = fs_group
        volume = next(v for v in spec["volumes"] if v["name"] == "ssh-key")
        volume["secret"]["defaultMode"] = mode
        c["env"] = [e for e in c["env"] if e["name"] != "HOME"] + [{"name": "HOME", "value": "/var/lib/zuul"}]
    found = [f for f in check(fitting(DEFAULT), patched(DEFAULT, pod)) if f.path == "executor.private_key_file"]
    assert (found == []) == accepted, (result.stderr, found)
    if not accepted:
        assert found[0].rule in ("sshKeyMode", "unreadable")

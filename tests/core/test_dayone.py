"""The executor pod works on day one: each defect of issue 12's list, at the render and in the contract.

Every render test here failed against the renderer before the fix; every
contract test shows the rule firing on the old shape and silent on the new.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config
from tests.tools import require_tool
from zuul_k8s import executor_process as daemon
from zuul_k8s import podfiles
from zuul_k8s.render import render
from zuul_k8s.validate import contract

REPO = Path(__file__).resolve().parents[2]
# Zuul's releases, from PyPI (`pip index versions zuul`, 2026-12-02); each is a
# tag of quay.io/zuul-ci/zuul-executor.
ZUUL_RELEASES = frozenset({
    "14.3.0", "14.2.0", "14.1.0", "14.0.0", "13.1.1", "13.1.0", "13.0.1", "13.0.0", "12.1.0",
    "12.0.0", "11.3.0", "11.2.0", "11.1.0", "11.0.1", "11.0.0", "10.2.0", "10.1.0", "10.0.0",
})


def _objects(**sections: Any) -> list[dict[str, Any]]:
    return render(config(**sections))


def _workload(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))


def _spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return _workload(objects)["spec"]["template"]["spec"]


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return _spec(objects)["containers"][0]


def _rules(objects: list[dict[str, Any]]) -> set[str]:
    return {f.rule for f in contract.findings(objects, 35)}


# -- probes: Zuul serves /health/* on prometheus_port, only after ZooKeeper answered


def test_probes_use_the_prometheus_port_and_a_startup_probe_waits_for_zookeeper() -> None:
    container = _container(_objects())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["prometheus"] == 9091
    for field, path in (("startupProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                        ("livenessProbe", "/health/live")):
        assert container[field]["httpGet"] == {"path": path, "port": "prometheus"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # a ZooKeeper restart
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60  # a restart kills every build


def test_contract_flags_liveness_without_startup_probe() -> None:
    objects = _objects()
    assert "startupProbe" not in _rules(objects)
    del _container(objects)["startupProbe"]
    assert "startupProbe" in _rules(objects)


# -- PID 1: an init that reaps the ssh-agents and signals zuul-executor alone


def test_dumb_init_is_pid_1_in_single_child_mode() -> None:
    container = _container(_objects())
    assert container["command"] == ["/usr/bin/dumb-init", "--single-child", "--"]
    assert container["args"][:2] == ["zuul-executor", "-f"]


# zuul/cmd/executor.py's order: fork the log streamer, then install the SIGTERM
# handler; the streamer reports whether it survived the kubelet's SIGTERM.
FORK_THEN_HANDLER = """
import os, signal, sys, time
streamer = os.fork()
if streamer == 0:
    time.sleep(30)
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: None)
print("ready", flush=True)
signal.pause()
time.sleep(0.5)
print("streamer", "gone" if os.waitpid(streamer, os.WNOHANG)[0] else "alive", flush=True)
os.kill(streamer, signal.SIGKILL)
"""


@pytest.mark.parametrize(("flags", "streamer"), [((), "gone"), (daemon.INIT_COMMAND[1:-1], "alive")])
def test_single_child_dumb_init_spares_the_log_streamer(flags: tuple[str, ...], streamer: str) -> None:
    """The real dumb-init: in its default mode SIGTERM reaches the whole process group."""
    init = require_tool("dumb-init")
    proc = subprocess.Popen([init, *flags, "--", sys.executable, "-c", FORK_THEN_HANDLER],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out.strip() == f"streamer {streamer}"


@pytest.mark.parametrize(("mode", "added"), [(0o440, False), (daemon.ROOT_KEY_MODE, True)])
def test_ssh_add_refuses_an_owned_key_others_may_read(tmp_path: Path, mode: int, added: bool) -> None:
    """The real OpenSSH: why a root executor's key is 0400 (the user here owns the file, as root would)."""
    for tool in ("ssh-keygen", "ssh-agent", "ssh-add"):
        require_tool(tool)
    key = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key.chmod(mode)
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ, **dict(re.findall(r"(SSH_\w+)=([^;]+);", agent)))
    try:
        result = subprocess.run(["ssh-add", str(key)], env=env, capture_output=True, text=True)
    finally:
        os.kill(int(env["SSH_AGENT_PID"]), signal.SIGTERM)
    assert (result.returncode == 0) is added, result.stderr
    if not added:
        assert "are too open" in result.stderr


@pytest.mark.parametrize(("command", "rule"), [
    (["zuul-executor", "-f"], "pid1"),
    (["/usr/bin/dumb-init", "--", "zuul-executor", "-f"], "pid1Signals"),
    (None, "pid1Signals"),
])
def test_contract_flags_pid_1(command: list[str] | None, rule: str) -> None:
    objects = _objects()
    assert not {"pid1", "pid1Signals"} & _rules(objects)
    container = _container(objects)
    del container["args"]
    if command is None:
        del container["command"]
    else:
        container["command"] = command
    assert rule in _rules(objects)


def test_shared_process_namespace_reaps_too() -> None:
    objects = _objects()
    _container(objects)["command"] = ["zuul-executor", "-f"]
    _spec(objects)["shareProcessNamespace"] = True
    assert "pid1" not in _rules(objects)


# -- the SSH key where Zuul's default private_key_file (~/.ssh/id_rsa) points


@pytest.mark.parametrize("uid", [10001, 0])
def test_default_private_key_file_is_the_mounted_key(uid: int) -> None:
    objects = _objects(user={"uid": uid, "gid": uid, "fsGroup": uid})
    spec, container = _spec(objects), _container(objects)
    env = {e["name"]: e.get("value") for e in container["env"]}
    home = env["HOME"]
    key = "~/.ssh/id_rsa".replace("~", home, 1)  # os.path.expanduser with this HOME
    mount = podfiles.covering(podfiles.container_mounts(spec, container), key)
    assert mount is not None and mount.source == "secret" and mount.name == "zuul-ssh-key"
    assert posixpath.relpath(key, mount.path) in {"id_rsa"}
    volume = next(v for v in spec["volumes"] if v["name"] == mount.volume)
    assert volume["secret"]["items"] == [{"key": "id_rsa", "path": "id_rsa"}]


def test_root_key_is_0400_without_fs_group() -> None:
    """OpenSSH refuses a key root owns that the group may read; an fsGroup would make it so."""
    spec = _spec(_objects(user={"uid": 0, "gid": 0, "fsGroup": 0}))
    assert "fsGroup" not in spec["securityContext"]
    key = next(v for v in spec["volumes"] if v["name"] == "ssh-key")
    assert key["secret"]["defaultMode"] == 0o400


def test_non_root_key_is_group_readable_through_fs_group() -> None:
    spec = _spec(_objects())
    assert spec["securityContext"]["fsGroup"] == 10001
    key = next(v for v in spec["volumes"] if v["name"] == "ssh-key")
    assert key["secret"]["defaultMode"] == 0o440


def test_contract_flags_the_key_away_from_the_default_path() -> None:
    objects = _objects()
    assert "sshKeyPath" not in _rules(objects)
    mount = next(m for m in _container(objects)["volumeMounts"] if m["name"] == "ssh-key")
    mount["mountPath"] = "/var/lib/zuul/ssh"
    assert "sshKeyPath" in _rules(objects)


def test_contract_flags_root_without_home_env() -> None:
    """uid 0's home in the image is /root: ~/.ssh/id_rsa is not where the key is mounted."""
    objects = _objects(user={"uid": 0, "gid": 0, "fsGroup": 0})
    assert "sshKeyPath" not in _rules(objects)
    container = _container(objects)
    container["env"] = [e for e in container["env"] if e["name"] != "HOME"]
    assert "sshKeyPath" in _rules(objects)


def test_contract_flags_a_root_key_readable_by_the_group() -> None:
    objects = _objects(user={"uid": 0, "gid": 0, "fsGroup": 0})
    assert "sshKeyMode" not in _rules(objects)
    with_group = copy.deepcopy(objects)
    _spec(with_group)["securityContext"]["fsGroup"] = 0
    assert "sshKeyMode" in _rules(with_group)
    group_mode = copy.deepcopy(objects)
    next(v for v in _spec(group_mode)["volumes"] if v["name"] == "ssh-key")["secret"]["defaultMode"] = 0o440
    assert "sshKeyMode" in _rules(group_mode)


# -- disk: reserved by a request, never capped where Zuul's governor cannot see


def test_emptydir_state_is_requested_not_capped() -> None:
    objects = _objects(state={"size": "120Gi"})
    spec = _spec(objects)
    state = next(v for v in spec["volumes"] if v["name"] == "state")
    assert state["emptyDir"] == {}
    resources = _container(objects)["resources"]
    assert resources["requests"]["ephemeral-storage"] == "120Gi"
    assert "ephemeral-storage" not in resources.get("limits", {})


def test_an_explicit_ephemeral_request_wins_and_pvc_state_requests_none() -> None:
    given = {"requests": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "50Gi"}, "limits": {"memory": "8Gi"}}
    assert _container(_objects(resources=given))["resources"] == given
    pvc = _container(_objects(workload={"kind": "StatefulSet"}, state={"type": "pvc"}))
    assert "ephemeral-storage" not in pvc["resources"]["requests"]


def test_contract_flags_invisible_disk_limits() -> None:
    objects = _objects()
    assert not {"stateSizeLimit", "stateDiskRequest", "diskLimit"} & _rules(objects)
    next(v for v in _spec(objects)["volumes"] if v["name"] == "state")["emptyDir"]["sizeLimit"] = "80Gi"
    resources = _container(objects)["resources"]
    del resources["requests"]["ephemeral-storage"]
    resources["limits"]["ephemeral-storage"] = "90Gi"
    assert {"stateSizeLimit", "stateDiskRequest", "diskLimit"} <= _rules(objects)


# -- a draining StatefulSet executor keeps its DNS name


def test_headless_service_publishes_not_ready_addresses() -> None:
    service = next(o for o in _objects(workload={"kind": "StatefulSet"}) if o["kind"] == "Service")
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_contract_flags_a_governing_service_that_drops_draining_pods() -> None:
    objects = _objects(workload={"kind": "StatefulSet"})
    assert "publishNotReadyAddresses" not in _rules(objects)
    next(o for o in objects if o["kind"] == "Service")["spec"].pop("publishNotReadyAddresses")
    found = [f for f in contract.findings(objects, 35) if f.rule == "publishNotReadyAddresses"]
    assert [(f.kind, f.path) for f in found] == [("Service", "spec.publishNotReadyAddresses")]


# -- fsGroup re-owns a PVC only when its top is not owned yet


def test_fs_group_change_policy_on_root_mismatch() -> None:
    objects = _objects(workload={"kind": "StatefulSet"}, state={"type": "pvc"})
    assert _spec(objects)["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert "fsGroupChangePolicy" not in _rules(objects)
    del _spec(objects)["securityContext"]["fsGroupChangePolicy"]
    assert "fsGroupChangePolicy" in _rules(objects)


# -- read-only root file system with a writable /tmp


def test_read_only_root_with_tmp_emptydir() -> None:
    objects = _objects()
    spec, container = _spec(objects), _container(objects)
    assert container["securityContext"]["readOnlyRootFilesystem"] is daemon.READ_ONLY_ROOT
    tmp = podfiles.covering(podfiles.container_mounts(spec, container), "/tmp/ssh-XXXX/agent.1")
    assert tmp is not None and tmp.source == "emptyDir" and not tmp.read_only
    assert "readOnlyTmp" not in _rules(objects)
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    container["securityContext"]["readOnlyRootFilesystem"] = True
    assert "readOnlyTmp" in _rules(objects)


# -- the image: Zuul's current release, and only tags that exist in the docs


def test_default_image_is_the_current_zuul_release() -> None:
    assert _container(_objects())["image"] == "quay.io/zuul-ci/zuul-executor:14.3.0"


def test_every_zuul_image_tag_in_the_docs_exists() -> None:
    texts = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "zuul_k8s/examples/config.yaml"]
    seen = {}
    for path in texts:
        for tag in re.findall(r"zuul-ci/zuul-executor:([0-9][0-9A-Za-z.\-]*[0-9A-Za-z])", path.read_text()):
            seen.setdefault(tag, path.name)
    assert seen, "no image tag found in the docs"
    unknown = {tag: where for tag, where in seen.items() if tag not in ZUUL_RELEASES}
    assert not unknown, f"image tags that Zuul never released: {unknown}"

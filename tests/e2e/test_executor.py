"""The executor as the kit renders it, in a real Zuul: registered, ready, building in bwrap.

Each test prints what it measured (`pytest -s` shows it): the figures the
kit's probe timings and disk settings are chosen from.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e import harness, process, stream, tenant, zookeeper
from tests.e2e.executor import ExecutorPod

pytestmark = pytest.mark.e2e


def sandbox_lines(text: str) -> dict[str, str]:
    """The sandbox job's `E2E key: value` lines, from its streamed console log."""
    found = {}
    for match in re.finditer(r"\| localhost \| E2E (\w+): (.*)$", text, re.MULTILINE):
        found.setdefault(match.group(1), match.group(2).strip())
    return found


def run_sandbox(zuul: harness.Zuul) -> tuple[dict[str, Any], str]:
    """(the build's record from zuul-web's API, its console log streamed through zuul-web)."""
    build = zuul.run("sandbox", "e2e-sandbox")
    text, _ = stream.console_stream(zuul.web_port, tenant.TENANT, build)
    return zuul.wait_result(build), text


def test_executor_is_ready_on_the_rendered_probe_port(e2e_zuul: harness.Zuul, e2e_executor: ExecutorPod) -> None:
    ready = e2e_executor.probe("readinessProbe")
    live = e2e_executor.probe("livenessProbe")
    assert ready.path == "/health/ready" and live.path == "/health/live"
    assert e2e_executor.probe_get("readinessProbe") == (200, "")
    assert e2e_executor.probe_get("livenessProbe") == (200, "")
    status = e2e_executor.probe_get("readinessProbe")
    entry = e2e_zuul.wait_executor_registered(e2e_executor)
    assert entry["state"] == "running"
    print("\npodman run: " + " ".join(e2e_executor.argv))
    print(f"executor: /health/ready {status} on rendered port {ready.port} "
          f"{e2e_executor.timings['ready']:.1f} s after podman run (ZooKeeper up); components: {entry}")


def test_zuul_startup_bwrap_check_passed(e2e_executor: ExecutorPod) -> None:
    log = e2e_executor.log()
    assert "bwrap execution validation failed" not in log
    # zuul/cmd/executor.py: the log streamer starts, the bwrap check runs `id`
    # in bwrap (raising on failure), then the executor registers in ZooKeeper.
    streamer = log.index("INFO zuul.Executor: Starting log streamer")
    registered = log.index("Registering component in ZooKeeper /zuul/components/executor/")
    assert streamer < registered
    # The same check by hand, as Zuul's error message suggests.
    result = e2e_executor.exec("zuul-bwrap", "/tmp", "/tmp", "id")
    assert result.returncode == 0, result.stderr
    assert f"uid={e2e_executor.translation.uid}" in result.stdout


def test_a_bad_pod_fails_zuuls_bwrap_check(e2e_zuul: harness.Zuul) -> None:
    """The check above can fail: with /proc masked (procMount removed), Zuul refuses to start."""
    def mask_proc(objects: list[Any]) -> None:
        for obj in objects:
            for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                container.get("securityContext", {}).pop("procMount", None)

    pod = e2e_zuul.start_executor(mutate=mask_proc, wait=False)
    try:
        code = pod.wait_exit(timeout=120)
        assert code != 0
        assert "bwrap execution validation failed" in pod.log()
    finally:
        pod.remove()


def test_build_runs_in_bwrap_and_streams_live(e2e_zuul: harness.Zuul, e2e_executor: ExecutorPod) -> None:
    record, text = run_sandbox(e2e_zuul)
    assert record["result"] == "SUCCESS", record
    lines = sandbox_lines(text)
    print("\n" + "\n".join(line for line in text.splitlines() if " E2E " in line))
    # Its own user namespace with one uid, the executor's (bwrap --uid).
    inside, _outside, count = lines["uid_map"].split()
    assert (inside, count) == (str(e2e_executor.translation.uid), "1")
    # Its own PID namespace: bwrap is PID 1 and the executor's processes are not there.
    assert lines["pid1"] == "bwrap"
    executor_pidns = e2e_executor.exec("readlink", "/proc/self/ns/pid").stdout.strip()
    assert lines["pidns"] != executor_pidns
    executor_pid1 = next(cmd for pid, _, _, cmd in e2e_executor.processes() if pid == 1)
    assert "bwrap" not in executor_pid1
    assert "CapEff: 0000000000000000" in lines["status"]
    assert "NoNewPrivs: 1" in lines["status"]


def test_no_zombie_accumulates(e2e_zuul: harness.Zuul, e2e_executor: ExecutorPod) -> None:
    """Each build leaves an ssh-agent behind for PID 1 to reap: PID 1 must reap."""
    for _ in range(3):
        record, _ = run_sandbox(e2e_zuul)
        assert record["result"] == "SUCCESS"
    time.sleep(2)
    processes = e2e_executor.processes()
    zombies = [p for p in processes if p[2].startswith("Z")]
    pid1 = next(p for p in processes if p[0] == 1)
    print(f"\nPID 1: {pid1[3]}; processes: {len(processes)}; zombies: {zombies}")
    assert zombies == []


def test_sigterm_lets_the_running_build_finish(e2e_zuul: harness.Zuul) -> None:
    with e2e_zuul.only_executor() as pod:
        build = e2e_zuul.run("slow", "e2e-slow")
        time.sleep(8)  # the playbook is running (ansible starts in about 8 s here)
        assert e2e_zuul.build(build).get("result") is None
        usage = {path: pod.exec("du", "-sk", path).stdout.split()[0]
                 for path in (f"/var/lib/zuul/builds/{build}", "/var/lib/zuul")}
        stopped_at = time.monotonic()
        pod.signal("TERM")  # what the kubelet sends first
        time.sleep(3)
        # Draining is PAUSED, which /health/ready still answers 200 (zuul/lib/monitoring.py).
        draining = pod.probe_get("readinessProbe")
        assert draining == (200, "")
        record = e2e_zuul.wait_result(build, timeout=pod.plan.grace_seconds)
        finished_at = time.monotonic()
        code = pod.wait_exit(timeout=120)
        exited_at = time.monotonic()
        log = pod.log()
    assert record["result"] == "SUCCESS", record
    assert "Stopping graceful" in log
    assert code == 0, log[-3000:]
    print(f"\nSIGTERM at 0 s; build {record['result']} at {finished_at - stopped_at:.1f} s "
          f"(duration {record['duration']:.1f} s); executor exited ({code}) at {exited_at - stopped_at:.1f} s; "
          f"disk while it ran (KiB): {usage}; /health/ready while draining: {draining}")


def test_root_executor_runs_a_build(e2e_zuul: harness.Zuul) -> None:
    with e2e_zuul.only_executor({"user": {"uid": 0}}) as pod:
        assert pod.translation.uid == 0
        record, text = run_sandbox(e2e_zuul)
        log = pod.log()
    assert record["result"] == "SUCCESS", (record, log[-3000:])
    lines = sandbox_lines(text)
    assert lines["uid_map"].split()[0] == "0"


def test_root_executor_with_a_group_readable_key_cannot_build(e2e_zuul: harness.Zuul) -> None:
    """The root test can fail: a key mode 0440 owned by root is refused by ssh-add for uid 0."""
    key_secret = e2e_zuul.kit_config(1, 2, {"user": {"uid": 0}})["secrets"]["sshKey"]["name"]

    def group_readable_key(objects: list[Any]) -> None:
        changed = 0
        for obj in objects:
            for volume in obj.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
                if volume.get("secret", {}).get("secretName") == key_secret:
                    volume["secret"]["defaultMode"] = 0o440
                    changed += 1
        assert changed == 1

    with e2e_zuul.only_executor({"user": {"uid": 0}}, mutate=group_readable_key) as pod:
        build = e2e_zuul.run("sandbox", "e2e-sandbox")
        try:
            record = e2e_zuul.wait_result(build)
        finally:
            e2e_zuul.dequeue("sandbox")  # no retry may reach another executor
        log = pod.log()
    assert record["result"] != "SUCCESS"
    assert "ssh-add failed" in log and "are too open" in log


def test_readiness_waits_for_zookeeper(e2e_zuul: harness.Zuul) -> None:
    """Zuul serves /health/* only after it reached ZooKeeper: the probes see nothing until then."""
    assert e2e_zuul.certs is not None
    port = process.free_port()
    outage = 45.0
    pod = e2e_zuul.start_executor(zk_hosts=f"127.0.0.1:{port}", wait=False)
    late_zk = None
    try:
        time.sleep(outage)
        assert pod.service.running(), pod.log()[-3000:]
        assert pod.probe_get("livenessProbe") is None
        assert pod.probe_get("readinessProbe") is None
        late_zk = zookeeper.start(e2e_zuul.workdir / "late-zookeeper", e2e_zuul.certs, port=port)
        zk_started = time.monotonic()  # ZooKeeper answers `ruok` over TLS from here
        pod.wait_ready(timeout=240)
        ready_after_zk = time.monotonic() - zk_started
    finally:
        pod.remove()
        if late_zk is not None:
            late_zk.service.stop()
    print(f"\nZooKeeper down {outage:.0f} s: no answer on the probe port; ready "
          f"{ready_after_zk:.1f} s after ZooKeeper came up ({pod.timings['ready']:.1f} s after podman run)")


def test_without_prometheus_port_the_probes_never_answer(e2e_zuul: harness.Zuul) -> None:
    """Zuul starts no HTTP server without `[executor] prometheus_port`: a running executor fails its probes."""
    pod = e2e_zuul.start_executor(prometheus_port_in_conf=False, wait=False)
    try:
        e2e_zuul.wait_executor_registered(pod)
        assert pod.probe_get("readinessProbe") is None
        assert pod.probe_get("livenessProbe") is None
    finally:
        pod.remove()


def test_without_an_init_process_zombies_accumulate(e2e_zuul: harness.Zuul) -> None:
    """The zombie check can fail: zuul-executor as PID 1 (a `command:` without dumb-init) reaps nothing."""
    def executor_as_pid1(objects: list[Any]) -> None:
        for obj in objects:
            for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                argv = [*container.get("command", []), *container.pop("args", [])]
                container["command"] = argv[argv.index("zuul-executor"):]

    with e2e_zuul.only_executor(mutate=executor_as_pid1) as pod:
        pid1 = next(cmd for pid, _, _, cmd in pod.processes() if pid == 1)
        assert "zuul-executor" in pid1 and "dumb-init" not in pid1
        for _ in range(2):
            record, _ = run_sandbox(e2e_zuul)
            assert record["result"] == "SUCCESS"
        time.sleep(2)
        zombies = [p for p in pod.processes() if p[2].startswith("Z")]
    print(f"\nPID 1: {pid1}; zombies after 2 builds: {zombies}")
    assert zombies


def test_a_project_added_while_zuul_runs_gets_builds(e2e_zuul: harness.Zuul, e2e_executor: ExecutorPod) -> None:
    e2e_zuul.add_project("added", {
        "zuul.yaml": f"- job:\n    name: e2e-added\n    run: playbooks/run.yaml\n\n"
                     f"- project:\n    {tenant.PIPELINE}:\n      jobs:\n        - e2e-added\n",
        "playbooks/run.yaml": "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                              "    - command: echo added\n",
    })
    build = e2e_zuul.run("added", "e2e-added")
    assert e2e_zuul.wait_result(build)["result"] == "SUCCESS"

"""The executor as `zuul-k8s apply` deploys it, on the real node, in a real Zuul.

The kubelet 1.35, containerd 2.2 and runc 1.4 of tests/k8s/node.py run the
Deployment the kit applies; the end-to-end Zuul (tests/e2e/harness.py) sends
it builds. The steps are the operator's (tests/e2e/kubernetes.py); each test
prints what it saw (`pytest -s`).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import harness, image, kubernetes, process, stream, tenant, tools
from tests.e2e.test_executor import sandbox_lines
from tests.e2e.test_selftest_job import project_files
from tests.k8s.fixtures import Cluster as K8s
from tests.k8s.fixtures import real_node

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.nodes]

NODE = "executor-node"
DRAIN_SECONDS = 90  # outlasts the canary self-test and the new pod's start (17 s here): see the last assert
PROJECTS = {
    **tenant.PROJECTS,
    "drain": {
        "zuul.yaml": f"- job:\n    name: e2e-drain\n    run: playbooks/slow.yaml\n    vars:\n"
                     f"      e2e_seconds: {DRAIN_SECONDS}\n\n"
                     f"- project:\n    {tenant.PIPELINE}:\n      jobs:\n        - e2e-drain\n",
        "playbooks/slow.yaml": tenant.SLOW_PLAYBOOK,
    },
    "zuul-k8s-selftest": project_files(),
}


@pytest.fixture(scope="module")
def deployed(k8s: K8s, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.Deployment]:
    tools.require()
    workdir = tmp_path_factory.mktemp("e2e-node")
    with tools.podman_conf(workdir / "podman"), real_node(k8s, NODE) as node, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The image goes onto the node (2 minutes) while Zuul starts.
        imported = pool.submit(kubernetes.import_image, node, image.build())
        with harness.running(workdir / "zuul", PROJECTS, node.slot.host_ip) as zuul:
            zuul.timings["image import"] = imported.result()
            yield kubernetes.deploy(zuul, node, k8s.kubeconfig, workdir)


def the_executor(deployed: kubernetes.Deployment) -> dict[str, Any]:
    [pod] = deployed.ready_executors()
    return pod


def test_apply_rolls_out_an_executor_the_kubelet_finds_ready(deployed: kubernetes.Deployment) -> None:
    apply = deployed.transcript["apply"]
    assert "rollout complete" in apply.stdout, apply.stdout
    pod = the_executor(deployed)
    spec = pod["spec"]
    assert spec["nodeName"] == NODE and spec["hostUsers"] is False
    container = next(c for c in spec["containers"] if c["name"] == "zuul-executor")
    assert container["securityContext"]["procMount"] == "Unmasked"
    assert "privileged" not in container["securityContext"]
    # The kubelet's own readiness probe decided Ready: /health/ready on the rendered port.
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    entry = process.wait_for(lambda: deployed.registered(pod), "the executor to register", 120)
    # The executor's host PID sits in a user namespace of its own: uid 0 inside is no host uid 0.
    uid_map = Path(f"/proc/{deployed.executor_pid(pod)}/uid_map").read_text().split()
    assert uid_map[0] == "0" and uid_map[1] != "0" and uid_map[2] == "65536", uid_map
    log = deployed.log(pod)
    assert "bwrap execution validation failed" not in log
    assert "Registering component in ZooKeeper /zuul/components/executor/" in log
    print(f"\n$ zuul-k8s apply ...\n{apply.stdout}\npod {pod['metadata']['name']} on {spec['nodeName']}, "
          f"IP {pod['status']['podIP']}, uid_map seen from the host: {' '.join(uid_map)}\n"
          f"zuul-web components: {entry}\ntimings: {deployed.zuul.timings}")


def test_preflight_and_validate_pass_for_the_node(deployed: kubernetes.Deployment) -> None:
    preflight = deployed.transcript["preflight"]
    assert preflight.returncode == 0, preflight.stdout + preflight.stderr
    assert "verdict: READY" in preflight.stdout
    print(f"\n$ zuul-k8s preflight\n{preflight.stdout}\n$ zuul-k8s validate --zuul-conf\n"
          f"{deployed.transcript['validate'].stdout}{deployed.transcript['validate'].stderr}")


def test_a_build_runs_in_bwrap_in_the_pod_and_streams_live(deployed: kubernetes.Deployment) -> None:
    zuul = deployed.zuul
    pod = the_executor(deployed)
    build = zuul.run("sandbox", "e2e-sandbox")
    text, _ = stream.console_stream(zuul.web_port, tenant.TENANT, build)  # zuul-web -> the pod's finger port
    record = zuul.wait_result(build)
    assert record["result"] == "SUCCESS", record
    lines = sandbox_lines(text)
    print("\n" + "\n".join(line for line in text.splitlines() if " E2E " in line))
    inside, _outside, count = lines["uid_map"].split()
    assert (inside, count) == ("10001", "1")
    assert lines["pid1"] == "bwrap"
    assert "CapEff: 0000000000000000" in lines["status"] and "NoNewPrivs: 1" in lines["status"]
    assert deployed.registered(pod) is not None  # the one executor, this pod's, still running


def test_the_self_test_job_passes_in_a_build_on_the_pod(deployed: kubernetes.Deployment,
                                                        tmp_path: Path) -> None:
    zuul = deployed.zuul
    pod = the_executor(deployed)
    token = tmp_path / "token"
    token.write_text(zuul.token())
    token.chmod(0o600)
    done = deployed.cli("selftest", "--zuul", zuul.web_url, "--tenant", tenant.TENANT,
                        "--token-file", str(token), "--timeout", "300")
    print(f"\n$ zuul-k8s selftest --zuul {zuul.web_url} --tenant {tenant.TENANT} ...\n{done.stdout}{done.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    # The build ran on this pod's executor (zuul-web's build record names its hostname, the pod IP).
    assert f"on executor {pod['status']['podIP']}: SUCCESS" in done.stdout


def test_pid_1_reaps_what_builds_leave(deployed: kubernetes.Deployment) -> None:
    """After builds (each leaves an ssh-agent behind; those of the tests above count), the
    pod holds no zombie: dumb-init, the image's ENTRYPOINT the kit keeps, is PID 1 and reaps."""
    pod = the_executor(deployed)
    zuul = deployed.zuul
    while len([b for b in zuul.builds() if b.get("result") == "SUCCESS"]) < 2:
        assert zuul.wait_result(zuul.run("sandbox", "e2e-sandbox"))["result"] == "SUCCESS"
    processes = deployed.processes(pod)
    pid1 = deployed.executor_pid(pod)  # the container's init, PID 1 inside
    assert (pid1, "dumb-init") in [(pid, name) for pid, _, name in processes], processes
    assert [p for p in processes if p[1] == "Z"] == [], processes


def test_upgrade_drains_a_running_build_then_rolls(deployed: kubernetes.Deployment) -> None:
    """`zuul-k8s upgrade` while a build runs: the canary self-test with the new image, then
    the rolling update; the kubelet stops the old executor, which finishes its build first."""
    zuul = deployed.zuul
    old = the_executor(deployed)
    current = old["spec"]["containers"][0]["image"]
    new_image = current.rsplit(":", 1)[0] + ":upgraded"
    deployed.node.ctr("images", "tag", "--force", current, new_image)  # a new tag, as a registry would hold
    build = zuul.run("drain", "e2e-drain")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The console, streamed from the old pod's finger port through zuul-web all along.
        console = pool.submit(stream.console_stream, zuul.web_port, tenant.TENANT, build, DRAIN_SECONDS + 300)
        upgrade = deployed.step("upgrade", "upgrade", "-c", str(deployed.config), "--zuul-conf",
                                str(deployed.zuul_conf), "--image", new_image, "--timeout", "900")
        text, _ = console.result()
    record = zuul.wait_result(build, timeout=DRAIN_SECONDS + 300)
    print(f"\n$ zuul-k8s upgrade --image {new_image} ...\n{upgrade.stdout}{upgrade.stderr}\n"
          f"build: {record['result']} in {record['duration']} s, ended {record['end_time']}")
    assert record["result"] == "SUCCESS", record
    # The canary and the self-test after the rollout: Zuul's own zuul-bwrap in Zuul's image, on the node.
    assert upgrade.stdout.count("self-test passed on every node") == 2, upgrade.stdout
    assert re.search(r"^zuul\.bwrap +pass ", upgrade.stdout, re.MULTILINE), upgrade.stdout
    assert f"E2E tick {DRAIN_SECONDS}" in text and "E2E slow job done" in text, text[-2000:]
    [new] = process.wait_for(lambda: _only_new(deployed, old), "the old executor to be gone", 300)
    assert new["spec"]["containers"][0]["image"] == new_image
    assert process.wait_for(lambda: deployed.registered(new), "the new executor to register", 120)
    # The kubelet sent SIGTERM before the build ended: the build finished in a stopping executor.
    killing = [e for e in deployed.events(old["metadata"]["name"]) if e.get("reason") == "Killing"]
    assert killing, deployed.events(old["metadata"]["name"])
    stopped_at = _timestamp(killing[0].get("firstTimestamp") or killing[0]["eventTime"])
    assert stopped_at < _timestamp(record["end_time"] + "Z"), (killing[0], record["end_time"])


def _only_new(deployed: kubernetes.Deployment, old: dict[str, Any]) -> list[dict[str, Any]] | None:
    pods = deployed.pods()
    if any(p["metadata"]["uid"] == old["metadata"]["uid"] for p in pods):
        return None
    ready = deployed.ready_executors()
    return ready if len(ready) == 1 else None


def _timestamp(text: str) -> float:
    text = re.sub(r"\.\d+", "", text).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()



def test_a_root_executor_runs_a_build(deployed: kubernetes.Deployment) -> None:
    """`user.uid: 0`, applied over the running executor: the kubelet's user namespace makes
    uid 0 an unprivileged host uid, the kit adds SETFCAP only, and builds run."""
    document = yaml.safe_load(deployed.config.read_text())
    document["user"]["uid"] = 0  # as an operator changes it: gid and fsGroup stay
    root_config = deployed.workdir / "zuul-k8s-root.yaml"
    root_config.write_text(yaml.safe_dump(document, sort_keys=False))
    deployed.step("apply root", "apply", "-c", str(root_config), "--zuul-conf", str(deployed.zuul_conf),
                  "--timeout", "600")
    pod = process.wait_for(lambda: _only_root(deployed), "the root executor alone", 300)
    assert pod["spec"]["securityContext"]["runAsUser"] == 0, pod["spec"]["securityContext"]
    container = pod["spec"]["containers"][0]["securityContext"]
    assert container["capabilities"] == {"drop": ["ALL"], "add": ["SETFCAP"]}, container
    process.wait_for(lambda: deployed.registered(pod), "the root executor to register", 120)
    zuul = deployed.zuul
    build = zuul.run("sandbox", "e2e-sandbox")
    text, _ = stream.console_stream(zuul.web_port, tenant.TENANT, build)
    record = zuul.wait_result(build)
    assert record["result"] == "SUCCESS", record
    lines = sandbox_lines(text)
    assert lines["uid_map"].split()[0] == "0" and lines["pid1"] == "bwrap", lines
    uid_map = Path(f"/proc/{deployed.executor_pid(pod)}/uid_map").read_text().split()
    assert uid_map[1] != "0", uid_map  # the pod's root is no host root
    print(f"\n$ zuul-k8s apply (user.uid 0)\n{deployed.transcript['apply root'].stdout}\n"
          + "\n".join(line for line in text.splitlines() if " E2E " in line))


def _only_root(deployed: kubernetes.Deployment) -> dict[str, Any] | None:
    pods = deployed.pods()
    ready = deployed.ready_executors()
    if len(pods) == 1 and len(ready) == 1 and ready[0]["spec"]["securityContext"].get("runAsUser") == 0:
        return ready[0]
    return None

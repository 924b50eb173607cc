"""Version behaviour read from real API servers: one build (kube-apiserver 1.35.4)
serves older minors' behaviour with --emulated-version (compatibility versions,
KEP-4330) and with the user-namespace gates off. The kit must say the truth on
each: Pod Security denials at v1.34 policy, a label version newer than the
server, and fields the server drops when its gates are off."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.helpers import create_namespace, run_cli, write_config
from tests.k8s.controlplane import ControlPlane, Options
from tests.k8s.fixtures import EXTERNAL, Cluster, start_cluster
from zuul_k8s.cluster.client import ApiError
from zuul_k8s.cluster.client import Cluster as Client
from zuul_k8s.config import load_config
from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zuul_k8s.podsecurity import evaluate_pod
from zuul_k8s.render import namespace_labels, render

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(bool(EXTERNAL), reason="starts API servers of its own with "
                                 "chosen versions and gates; ZUUL_K8S_TEST_KUBECONFIG names one cluster")]

GATES_OFF = {"UserNamespacesSupport": False, "ProcMountType": False}
SERVERS = {
    "1.34": Options(emulated_version="1.34", controllers=False),
    "1.33": Options(emulated_version="1.33", controllers=False),
    "1.32": Options(emulated_version="1.32", controllers=False),
    "gates-off": Options(feature_gates=GATES_OFF, controllers=False),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, ControlPlane]]:
    """An API server behaving as an older or gated-off one (no controllers: only what the
    API itself does is judged here)."""
    cluster = start_cluster(copy.deepcopy(SERVERS[request.param]), kwok=False)
    try:
        yield request.param, cluster.control_plane
    finally:
        cluster.stop()


def _pod(namespace: str) -> dict[str, Any]:
    """The executor's pod, as its ReplicaSet would create it (the default config)."""
    template = next(o for o in render(load_config(None)) if o["kind"] == "Deployment")["spec"]["template"]
    spec = {k: v for k, v in template["spec"].items() if k != "serviceAccountName"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "executor", "namespace": namespace, "labels": template["metadata"]["labels"]},
            "spec": spec}


def _namespace(client: Client, labels: dict[str, str]) -> str:
    return create_namespace(client, f"zuul-v-{uuid.uuid4().hex[:6]}", labels, ("default",))


def _baseline(version: str) -> dict[str, str]:
    return {"pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": version}


@pytest.mark.parametrize(("policy", "admitted"), [("v1.34", False), ("v1.35", True), ("latest", True)])
def test_pod_security_of_a_1_35_server(k8s: Cluster, policy: str, admitted: bool) -> None:
    """The executor's pod at baseline: denied at v1.34 policy, admitted from v1.35; the
    kit's own evaluator agrees with the real admission plugin."""
    client = Client.connect(k8s.kubeconfig)
    ns = _namespace(client, _baseline(policy))
    pod = _pod(ns)
    try:
        client.request("POST", f"/api/v1/namespaces/{ns}/pods", {"dryRun": "All"}, pod)
        real: str | None = None
    except ApiError as err:
        assert err.status == 403
        real = err.message
    finally:
        client.request("DELETE", f"/api/v1/namespaces/{ns}")
    ours = evaluate_pod(pod["metadata"], pod["spec"], "baseline", policy)
    assert ours.allowed is admitted and (real is None) is admitted, real
    if not admitted:
        assert real == ('pods "executor" is forbidden: violates PodSecurity "baseline:v1.34": procMount '
                        '(container "zuul-executor" must not set securityContext.procMount to "Unmasked")')
        assert "procMount" in ours.message()


def test_what_an_older_or_gated_server_does_with_the_executor(server: tuple[str, ControlPlane]) -> None:
    """Per server: does Pod Security (at the kit's v1.35 label) admit the pod, and does the
    server keep hostUsers and procMount? Read from the real server, held against what the
    kit's stored-object check and preflight conclude."""
    name, plane = server
    client = Client.connect(str(plane.admin_kubeconfig))
    ns = _namespace(client, _baseline("v1.35"))
    try:
        stored = client.request("POST", f"/api/v1/namespaces/{ns}/pods", {"dryRun": "All"}, _pod(ns))
        denial = None
    except ApiError as err:
        stored, denial = None, err.message
    if name in ("1.34", "1.33"):
        # Gates on (beta, on since 1.33), but this server's newest Pod Security rules are
        # its own minor's: the v1.35 label means its latest, which denies Unmasked.
        assert denial is not None and 'violates PodSecurity "baseline:v1.35": procMount' in denial
    else:
        # 1.32 (gates off by default) and gates off: the pod is admitted, because the
        # server silently dropped what made it need v1.35.
        assert denial is None and stored is not None
        spec = stored["spec"]
        assert "hostUsers" not in spec
        assert spec["containers"][0]["securityContext"]["procMount"] == "Default"


def test_preflight_tells_the_truth(server: tuple[str, ControlPlane], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    name, plane = server
    kubeconfig = str(plane.admin_kubeconfig)
    client = Client.connect(kubeconfig)
    ns = _namespace(client, namespace_labels("baseline", 35))
    code, out, _ = run_cli(capsys, "preflight", "-c", write_config(tmp_path, ns), "--kubeconfig", kubeconfig)
    assert code == EXIT_FAILED
    if name == "gates-off":  # /version says 1.35: only the dry run shows the truth
        assert "stored as sent" in out and "feature gates UserNamespacesSupport and ProcMountType are off" in out
    else:
        minor = name.split(".")[1]
        assert f"v1.35.4 emulating 1.{minor}" in out
        assert f"kubernetes.version is 1.35 but the server is 1.{minor}" in out
        if name != "1.32":
            assert f"(this server applies v1.{minor})" in out and "would deny the executor" in out


def test_apply_refuses_what_the_server_would_not_keep(server: tuple[str, ControlPlane], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing reaches the cluster that it would store weakened, or read at older rules."""
    name, plane = server
    kubeconfig = str(plane.admin_kubeconfig)
    ns = f"zuul-a-{uuid.uuid4().hex[:6]}"
    code, out, err = run_cli(capsys, "apply", "-c", write_config(tmp_path, ns), "--kubeconfig", kubeconfig,
                             "--no-wait")
    assert code == EXIT_USAGE, out + err
    client = Client.connect(kubeconfig)
    if name == "gates-off":
        assert "spec.template.spec.hostUsers" in err and "stored it differently" in err
        assert client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/zuul-executor") is None
    else:
        assert "kubernetes.version is 1.35 but the server is" in err
        assert client.get(f"/api/v1/namespaces/{ns}") is None
    # Told the server's version, the kit renders what that server admits (1.33/1.34:
    # enforce privileged, warn baseline) and apply goes through.
    if name in ("1.34", "1.33"):
        config = write_config(tmp_path, ns, "fitted.yaml", kubernetes={"version": name})
        code, out, err = run_cli(capsys, "apply", "-c", config, "--kubeconfig", kubeconfig, "--no-wait")
        assert code == EXIT_OK, out + err
        assert 'the API server says: would violate PodSecurity "baseline:v1.' in err

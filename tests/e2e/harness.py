"""The end-to-end Zuul: ZooKeeper (TLS), PostgreSQL, zuul-scheduler, zuul-web, a merger, and the
executor as the kit renders it, all real, on this machine.

`Zuul.start()` brings up everything but the executor; `start_executor()` runs
one (tests start several in turn: different kit settings, a stop mid-build).
`close()` removes everything that was started, in reverse order.
"""

from __future__ import annotations

import contextlib
import json
import secrets as secrets_module
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.e2e import executor as executor_mod
from tests.e2e import image as image_mod
from tests.e2e import pod, postgres, process, tenant, tls, zookeeper, zuulconf, zuulvenv

# The executor stops taking builds when the load average exceeds
# load_multiplier x CPUs (Zuul's default 2.5). This 2-core machine is shared
# with other work, so the tests' zuul.conf raises it; nothing else changes.
LOAD_CONF = "load_multiplier=50\n"


class ZuulError(RuntimeError):
    """Zuul or the harness did not do what a test waited for; the message says what and where to look."""


def _ssh_key() -> bytes:
    """A fresh passphrase-less key in OpenSSH format, as `ssh-keygen -t ed25519 -N ''` writes."""
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())


@dataclass
class Zuul:
    workdir: Path
    projects: Mapping[str, Mapping[str, str]] | None = None  # default: tenant.PROJECTS
    # Where ZooKeeper and git listen: loopback for podman executors (host network), a
    # real node's host address for executors in its pods (tests/e2e/kubernetes.py).
    address: str = tls.LOOPBACK
    services: list[process.Service] = field(default_factory=list)
    executors: list[executor_mod.ExecutorPod] = field(default_factory=list)
    pg: postgres.Postgres | None = None
    certs: tls.Certificates | None = None
    zk: zookeeper.ZooKeeper | None = None
    git: tenant.Tenant | None = None
    web_port: int = 0
    auth_secret: str = field(default="", repr=False)  # secrets stay out of reprs and tracebacks
    image: str = ""
    ssh_key: bytes = field(default=b"", repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    # ---- start and stop ----

    def start(self, timeout: float = 240.0) -> Zuul:
        """Everything but the executor, in dependency order; the executor image is built first."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        venv = zuulvenv.ensure()
        self.image = image_mod.build()
        started = time.monotonic()
        self.certs = tls.make(self.workdir / "tls", self.address)
        self.zk = zookeeper.start(self.workdir / "zookeeper", self.certs, address=self.address)
        self.services.append(self.zk.service)
        self.pg = postgres.start()
        self.git = tenant.create(self.workdir / "tenant", self.projects, self.address)
        self.services.append(self.git.service)
        self.web_port = process.free_port()
        self.auth_secret = secrets_module.token_hex(24)
        self.ssh_key = _ssh_key()
        state = self.workdir / "state"
        state.mkdir(exist_ok=True)
        conf = self.workdir / "zuul.conf"
        conf.write_text(zuulconf.host_conf(
            zk_hosts=self.zk.hosts,
            zk_files=zuulconf.ZooKeeperFiles(str(self.certs.ca), str(self.certs.client_cert),
                                            str(self.certs.client_key)),
            git_connection=tenant.CONNECTION, git_baseurl=self.git.baseurl,
            tenant_config=str(self.git.main_yaml), dburi=self.pg.dburi, web_port=self.web_port,
            auth_secret=self.auth_secret, state_dir=str(state)))
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(state)}
        for name in ("zuul-merger", "zuul-scheduler", "zuul-web"):
            service = process.start(name, [str(venv / "bin" / name), "-f", "-c", str(conf)],
                                    self.workdir / f"{name}.log", env=env, cwd=state)
            self.services.append(service)
        web = self.services[-1]
        process.wait_for(lambda: self._tenant_loaded(), f"zuul-web to list tenant {tenant.TENANT}",
                         timeout, web)
        self.timings["zuul"] = time.monotonic() - started
        return self

    def _tenant_loaded(self) -> bool:
        try:
            tenants = self.api("/api/tenants")
        except ZuulError:
            return False
        return any(t.get("name") == tenant.TENANT for t in tenants)

    def close(self) -> None:
        """Stops and removes everything started, newest first; never raises."""
        for pod_ in reversed(self.executors):
            with contextlib.suppress(Exception):
                pod_.remove()
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                service.stop()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.stop()

    # ---- the executor ----

    def kit_config(self, finger_port: int, prometheus_port: int,
                   overrides: Mapping[str, Any] | None = None) -> Any:
        return executor_mod.kit(self.image, finger_port, prometheus_port, overrides)

    def start_executor(self, overrides: Mapping[str, Any] | None = None, *, extra_conf: str = LOAD_CONF,
                       extra_flags: Sequence[str] = (), prometheus_port_in_conf: bool = True,
                       zk_hosts: str | None = None, mutate: Callable[[list[Any]], None] | None = None,
                       wait: bool = True, timeout: float = 240.0) -> executor_mod.ExecutorPod:
        """An executor rendered by the kit from the example config plus `overrides`, started.

        Its zuul.conf points every path at where the rendered pod mounts it;
        `prometheus_port_in_conf=False` leaves `prometheus_port` out (as the
        docs did not ask for it); `zk_hosts` points it at another ZooKeeper;
        `mutate` changes the rendered objects in place (a weakened pod). With
        `wait`, returns once the executor is ready (readiness probe 200) and
        registered with Zuul as running.
        """
        cfg = self.kit_config(process.free_port(), process.free_port(), overrides)
        conf = self.executor_zuul_conf(cfg, prometheus_port_in_conf=prometheus_port_in_conf,
                                       zk_hosts=zk_hosts, extra=extra_conf)
        index = len(self.executors)
        pod_ip = f"{executor_mod.POD_IP_BASE}{10 + index}"
        objects = executor_mod.render_objects(cfg, conf)
        if mutate is not None:
            mutate(objects)
        secret_data = self.secret_contents(cfg, conf)
        pod_ = executor_mod.start(objects, secret_data, self.image,
                                  self.workdir / f"executor-{index}.log", cfg, pod_ip, extra_flags)
        pod_.zuul_conf_path = self.executor_conf_path(cfg, pod_.plan)
        self.executors.append(pod_)
        if wait:
            pod_.wait_ready(timeout)
            self.wait_executor_registered(pod_, timeout)
        return pod_

    def secret_contents(self, cfg: Any, conf: bytes) -> dict[str, dict[str, bytes]]:
        """The Secrets an operator creates for `cfg`: zuul.conf, the SSH key, ZooKeeper's TLS files."""
        assert self.certs is not None
        zk_files = {"ca.crt": self.certs.ca.read_bytes(), "tls.crt": self.certs.client_cert.read_bytes(),
                    "tls.key": self.certs.client_key.read_bytes()}
        return executor_mod.secret_contents(cfg, conf, self.ssh_key, zk_files)

    def executor_zuul_conf(self, cfg: Any, *, prometheus_port_in_conf: bool = True,
                           zk_hosts: str | None = None, extra: str = LOAD_CONF) -> bytes:
        """The executor's zuul.conf as the docs tell an operator to write it for the pod
        `cfg` renders: each path where the pod mounts it (read from a first render)."""
        assert self.zk is not None and self.git is not None
        draft = pod.plan(executor_mod.render_objects(cfg, b""), self.secret_contents(cfg, b""),
                         executor_mod.downward_fields(cfg, "draft", tls.LOOPBACK))
        return zuulconf.executor_conf(
            zk_hosts=zk_hosts or self.zk.hosts, git_connection=tenant.CONNECTION,
            git_baseurl=self.git.baseurl,
            paths=self.executor_paths(cfg, draft, prometheus_port_in_conf), extra=extra).encode()

    @contextlib.contextmanager
    def only_executor(self, overrides: Mapping[str, Any] | None = None,
                      **kwargs: Any) -> Iterator[executor_mod.ExecutorPod]:
        """A new executor that gets every build: the running ones are paused meanwhile
        (`zuul-executor pause` on their command socket), and resumed after it is removed."""
        paused = [p for p in self.executors if p.service.running()]
        for other in paused:
            other.command("pause")
        try:
            pod_ = self.start_executor(overrides, **kwargs)
            try:
                yield pod_
            finally:
                pod_.remove()
        finally:
            for other in paused:
                if other.service.running():
                    other.command("unpause")

    @staticmethod
    def executor_conf_path(cfg: Any, plan: pod.Plan) -> str:
        secret = cfg["secrets"]["zuulConf"]
        path = pod.secret_path(plan, secret["name"], secret["key"])
        if path is None:
            raise ZuulError("the rendered pod mounts no zuul.conf")
        return path

    @staticmethod
    def executor_paths(cfg: Any, plan: pod.Plan, prometheus_port: bool) -> zuulconf.ExecutorPaths:
        """zuul.conf's paths and ports, read from the rendered pod (never assumed)."""
        secrets = cfg["secrets"]

        def where(secret: str, key: str) -> str:
            path = pod.secret_path(plan, secret, key)
            if path is None:
                raise ZuulError(f"the rendered pod mounts no file for key {key!r} of Secret {secret!r}")
            return path

        tls_secret = secrets.get("zookeeperTls")
        if tls_secret is None:
            raise ZuulError("the e2e Zuul needs ZooKeeper TLS: keep secrets.zookeeperTls")
        zk_files = zuulconf.ZooKeeperFiles(where(tls_secret["name"], "ca.crt"),
                                          where(tls_secret["name"], "tls.crt"),
                                          where(tls_secret["name"], "tls.key"))
        ssh = secrets.get("sshKey")
        key_file = where(ssh["name"], ssh["key"]) if ssh else None
        state_dir = pod.volume_path(plan, "state")
        if state_dir is None:
            raise ZuulError("the rendered pod mounts no `state` volume")
        readiness = next((p for p in plan.probes if p.kind == "readinessProbe"), None)
        return zuulconf.ExecutorPaths(zk_files, key_file, state_dir, plan.ports["finger"],
                                      readiness.port if readiness and prometheus_port else None)

    def components(self) -> list[dict[str, Any]]:
        return self.api("/api/components").get("executor", [])

    def wait_executor_registered(self, pod_: executor_mod.ExecutorPod, timeout: float = 120.0) -> dict[str, Any]:
        """The executor's entry in zuul-web's component list, once it is `running`."""
        def mine() -> dict[str, Any] | None:
            for comp in self.components():
                if comp.get("state") == "running" and comp.get("hostname") == _executor_hostname(pod_):
                    return comp
            return None

        return process.wait_for(mine, "the executor to register as running in /api/components",
                                timeout, pod_.service)

    def add_project(self, name: str, files: Mapping[str, str], timeout: float = 180.0) -> None:
        """A new untrusted project in the tenant, while Zuul runs: commit, main.yaml, then
        `zuul-scheduler smart-reconfigure`; returns once zuul-web lists the project."""
        assert self.git is not None
        self.git.add(name, files)
        venv = zuulvenv.ensure()
        result = subprocess.run([str(venv / "bin/zuul-scheduler"), "-c", str(self.workdir / "zuul.conf"),
                                 "smart-reconfigure"], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise ZuulError(f"zuul-scheduler smart-reconfigure failed: {result.stdout}{result.stderr}")

        def listed() -> bool:
            projects = self.api(f"/api/tenant/{tenant.TENANT}/projects")
            return any(p.get("name") == name for p in projects)

        process.wait_for(listed, f"zuul-web to list project {name}", timeout, None, interval=1.0)

    # ---- zuul-web's API ----

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def token(self) -> str:
        """An admin token for the tenant (the `[auth e2e]` HS256 section, rule e2e-admin)."""
        return zuulconf.admin_token(self.auth_secret, tenant.ADMIN_SUBJECT)

    def api(self, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.web_url + path, data=data, method="POST" if data else "GET")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ZuulError(f"{request.method} {path}: HTTP {error.code}: {error.read()[:500]!r}") from None
        except OSError as error:
            raise ZuulError(f"{request.method} {path}: {error}") from None
        return json.loads(text) if text else None

    def builds(self, project: str | None = None, job: str | None = None) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in (("project", project), ("job_name", job)) if v)
        return self.api(f"/api/tenant/{tenant.TENANT}/builds?{query}&limit=100")

    def enqueue(self, project: str, pipeline: str = tenant.PIPELINE) -> None:
        """Enqueues the project's branch head into `pipeline` through zuul-web, as an admin.

        No `oldrev`: the git driver then takes the head commit's files as the
        change's (an all-zero oldrev makes its files-changes merger job fail).
        """
        assert self.git is not None
        self.api(f"/api/tenant/{tenant.TENANT}/project/{project}/enqueue",
                 {"pipeline": pipeline, "ref": f"refs/heads/{tenant.BRANCH}",
                  "newrev": self.git.head(project)}, token=self.token())

    def dequeue(self, project: str, pipeline: str = tenant.PIPELINE) -> None:
        """Removes the project's branch item from `pipeline` (a build that would be retried)."""
        self.api(f"/api/tenant/{tenant.TENANT}/project/{project}/dequeue",
                 {"pipeline": pipeline, "ref": f"refs/heads/{tenant.BRANCH}"}, token=self.token())

    def run(self, project: str, job: str, *, timeout: float = 300.0) -> str:
        """Enqueues `project` and returns the uuid of the new build of `job` once it started."""
        before = {b["uuid"] for b in self.builds(project, job)}
        self.enqueue(project)

        def new_build() -> str | None:
            for build in self.builds(project, job):
                if build["uuid"] not in before:
                    return str(build["uuid"])
            return None

        return process.wait_for(new_build, f"a build of {job} to start", timeout, None, interval=1.0)

    def build(self, build_uuid: str) -> dict[str, Any]:
        return self.api(f"/api/tenant/{tenant.TENANT}/build/{build_uuid}")

    def wait_result(self, build_uuid: str, timeout: float = 300.0) -> dict[str, Any]:
        """The build's record from zuul-web's API once it has a result."""
        def finished() -> dict[str, Any] | None:
            record = self.build(build_uuid)
            return record if record.get("result") else None
        return process.wait_for(finished, f"build {build_uuid} to finish", timeout, None, interval=1.0)


def _executor_hostname(pod_: executor_mod.ExecutorPod) -> str:
    """What the executor registers as its hostname: zuul.conf's %(ZUUL_EXECUTOR_HOSTNAME)s."""
    return dict(pod_.plan.env)["ZUUL_EXECUTOR_HOSTNAME"]


@contextlib.contextmanager
def running(workdir: Path, projects: Mapping[str, Mapping[str, str]] | None = None,
            address: str = tls.LOOPBACK) -> Iterator[Zuul]:
    zuul = Zuul(workdir, projects, address)
    try:
        yield zuul.start()
    finally:
        zuul.close()
        shutil.rmtree(workdir / "state", ignore_errors=True)

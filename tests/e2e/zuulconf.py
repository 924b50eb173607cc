"""The zuul.conf files of the end-to-end Zuul, and the admin token for zuul-web.

The scheduler and zuul-web run here and read their files where they are. The
executor's zuul.conf is written as the kit's docs tell an operator to write
it for the rendered pod: every path is where the pod mounts the Secret that
holds it (found in the rendered pod, see pod.py), the hostname is
`%(ZUUL_EXECUTOR_HOSTNAME)s`, and the ports are the rendered container ports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

AUTH_SECTION = "e2e"
ISSUER = "zuul-k8s-e2e"
AUDIENCE = "zuul-k8s-e2e"
REALM = "zuul-k8s-e2e"
KEYSTORE_PASSWORD = "zuul-k8s-e2e-keystore"


@dataclass(frozen=True)
class ZooKeeperFiles:
    """Where a component finds the ZooKeeper client TLS files."""

    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class ExecutorPaths:
    """The executor's paths and ports, as the rendered pod gives them."""

    zookeeper: ZooKeeperFiles
    private_key_file: str | None
    state_dir: str
    finger_port: int
    prometheus_port: int | None


def _zookeeper(hosts: str, files: ZooKeeperFiles) -> str:
    return (f"[zookeeper]\nhosts={hosts}\ntls_ca={files.ca}\ntls_cert={files.cert}\n"
            f"tls_key={files.key}\nsession_timeout=40\n")


def _common(zk_hosts: str, zk_files: ZooKeeperFiles, git_connection: str, git_baseurl: str) -> str:
    return (_zookeeper(zk_hosts, zk_files)
            + f"\n[keystore]\npassword={KEYSTORE_PASSWORD}\n"
            + f'\n[connection "{git_connection}"]\ndriver=git\nbaseurl={git_baseurl}\n')


def host_conf(*, zk_hosts: str, zk_files: ZooKeeperFiles, git_connection: str, git_baseurl: str,
              tenant_config: str, dburi: str, web_port: int, auth_secret: str, state_dir: str) -> str:
    """zuul.conf of the scheduler, zuul-web and a merger, on this machine.

    The merger reads the tenant's config for the scheduler, so Zuul is up
    (and zuul-web lists the tenant) before any executor runs.
    """
    return (_common(zk_hosts, zk_files, git_connection, git_baseurl)
            + f"\n[scheduler]\ntenant_config={tenant_config}\nstate_dir={state_dir}\n"
            + f"command_socket={state_dir}/scheduler.socket\n"
            + f"\n[database]\ndburi={dburi}\n"
            + f"\n[web]\nlisten_address=127.0.0.1\nport={web_port}\nroot=http://127.0.0.1:{web_port}\n"
            + f"command_socket={state_dir}/web.socket\n"
            + f"\n[merger]\ngit_dir={state_dir}/merger-git\ncommand_socket={state_dir}/merger.socket\n"
            + f"\n[auth {AUTH_SECTION}]\ndriver=HS256\nallow_authz_override=true\nrealm={REALM}\n"
            + f"client_id={AUDIENCE}\nissuer_id={ISSUER}\nsecret={auth_secret}\n")


def executor_conf(*, zk_hosts: str, git_connection: str, git_baseurl: str,
                  paths: ExecutorPaths, extra: str = "") -> str:
    """The executor's zuul.conf, for the rendered pod (docs/getting-started.md)."""
    executor = ["[executor]", "hostname=%(ZUUL_EXECUTOR_HOSTNAME)s", f"state_dir={paths.state_dir}",
                f"finger_port={paths.finger_port}"]
    if paths.prometheus_port is not None:
        executor.append(f"prometheus_port={paths.prometheus_port}")
    if paths.private_key_file is not None:
        executor.append(f"private_key_file={paths.private_key_file}")
    return (_common(zk_hosts, paths.zookeeper, git_connection, git_baseurl)
            + "\n" + "\n".join(executor) + "\n" + extra)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def admin_token(secret: str, subject: str, lifetime: int = 3600) -> str:
    """An HS256 JWT that zuul-web's `[auth e2e]` section accepts (RFC 7519, stdlib only)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now,
                              "exp": now + lifetime}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"

"""ZooKeeper from Debian's `zookeeper` package, standalone, with TLS only.

Set up as Zuul's sdist does it (tools/zoo.cfg, doc/source/examples/zoo.cfg):
the Netty connection factory, `secureClientPort` and no plain client port, a
PEM key store (certificate + key) and a PEM trust store (the CA). ZooKeeper
asks every client for a certificate signed by that CA.
"""

from __future__ import annotations

import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.e2e import process
from tests.e2e.tls import LOOPBACK, Certificates

JAVA_LIB = Path("/usr/share/java")
JAR = JAVA_LIB / "zookeeper.jar"  # its manifest's Class-Path names the dependencies
# Missing from that Class-Path but needed by the TLS (Netty) server: Debian's
# manifest is for the plain NIO server.
EXTRA = ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar",
         "slf4j-simple.jar")  # the last: an slf4j binding that logs to stderr


@dataclass
class ZooKeeper:
    port: int
    service: process.Service
    address: str = LOOPBACK

    @property
    def hosts(self) -> str:
        return f"{self.address}:{self.port}"


def config(data_dir: Path, port: int, admin_port: int, certs: Certificates, address: str = LOOPBACK) -> str:
    return "\n".join([
        f"dataDir={data_dir}",
        "tickTime=2000",
        "maxClientCnxns=1000",
        "standaloneEnabled=true",
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        f"admin.serverPort={admin_port}",
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        f"secureClientPortAddress={address}",
        f"secureClientPort={port}",
        f"ssl.keyStore.location={certs.server_keystore}",
        f"ssl.trustStore.location={certs.ca}",
        # The type is guessed from the file name, and .crt is not guessed.
        "ssl.keyStore.type=PEM",
        "ssl.trustStore.type=PEM",
        "4lw.commands.whitelist=*",
        "",
    ])


def command(conf: Path) -> list[str]:
    java = shutil.which("java")
    if java is None or not JAR.exists():
        raise process.StartError("ZooKeeper needs Debian's zookeeper package (apt-get install zookeeper)")
    classpath = ":".join(str(p) for p in (JAR, *(JAVA_LIB / name for name in EXTRA)) if p.exists())
    return [java, "-Xmx256m", "-cp", classpath, "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(conf)]


def start(workdir: Path, certs: Certificates, port: int | None = None, address: str = LOOPBACK,
          timeout: float = 60.0) -> ZooKeeper:
    """ZooKeeper listening with TLS on `address`:`port` (a free one by default)."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = port or process.free_port()
    conf = workdir / "zoo.cfg"
    conf.write_text(config(data, port, process.free_port(), certs, address))
    service = process.start("zookeeper", command(conf), workdir / "zookeeper.log")
    process.wait_for(lambda: ruok(port, certs, address), f"ZooKeeper to answer over TLS on {address}:{port}",
                     timeout, service)
    return ZooKeeper(port, service, address)


def ruok(port: int, certs: Certificates, address: str = LOOPBACK) -> bool:
    """ZooKeeper answers `imok` over TLS with the client certificate."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    try:
        with socket.create_connection((address, port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=address) as sock:
            sock.sendall(b"ruok")
            return sock.recv(4) == b"imok"
    except OSError:
        return False

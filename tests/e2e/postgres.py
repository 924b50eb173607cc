"""A private PostgreSQL cluster (Debian's server binaries) for Zuul's database.

initdb as the unprivileged `postgres` user (the Debian package creates it;
PostgreSQL refuses to run as root) in a directory of its own, listening on
127.0.0.1 at a private port with its socket in that directory: the system
cluster, if any, is never touched. Trust authentication: only loopback and
only for the run.
"""

from __future__ import annotations

import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.e2e import process

USER = "postgres"
DATABASE = "zuul"
ROLE = "zuul"


@dataclass
class Postgres:
    port: int
    root: Path  # removed by stop()
    service: process.Service

    @property
    def dburi(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        self.service.signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
        self.service.stop(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def bindir() -> Path:
    """The newest installed server's bin directory (/usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not found:
        raise process.StartError("PostgreSQL's server is not installed (apt-get install postgresql)")
    return found[-1].parent


def start(timeout: float = 60.0) -> Postgres:
    bin_dir = bindir()
    try:
        account = pwd.getpwnam(USER)
    except KeyError:
        raise process.StartError(f"no {USER!r} user: Debian's postgresql package creates it") from None
    # Outside pytest's tmp dirs: those are root-only (0700), PostgreSQL runs as USER.
    root = Path(tempfile.mkdtemp(prefix="zuul-k8s-e2e-pg-"))
    service = None
    try:
        root.chmod(0o700)
        shutil.chown(root, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid}
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root)}
        subprocess.run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", ROLE, "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, env=env,
                       cwd=root, extra_groups=[], **as_user)
        port = process.free_port()
        service = process.start("postgres", [
            str(bin_dir / "postgres"), "-D", str(root / "data"), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(root), "-c", "fsync=off", "-c", "full_page_writes=off",
        ], root / "postgres.log", env=env, cwd=root, **as_user)
        pg = Postgres(port, root, service)
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE]
        process.wait_for(
            lambda: subprocess.run(createdb, capture_output=True, env=env).returncode == 0,
            f"PostgreSQL on port {port} to create the database", timeout, service)
        return pg
    except BaseException:
        if service is not None:
            service.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise

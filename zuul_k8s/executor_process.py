"""What the zuul-executor process needs from its container to work on day one.

isolation.py says what bwrap needs; this module says what the executor daemon
itself needs: an init as PID 1, its home and key where Zuul looks, health
probes that fit when Zuul serves them, and disk the scheduler reserves. The
renderer builds the container from these values and the contract validator
checks any manifest against them, so the two cannot disagree.

Facts, read in Zuul 14.3.0's sdist unless another source is named:
- zuul/cmd/executor.py forks the log streamer (the finger port) before it
  installs its SIGTERM handler, so the streamer keeps the default SIGTERM
  action and shares zuul-executor's process group.
- zuul/merger/server.py connects to ZooKeeper (retrying for ever) before
  zuul/executor/server.py starts the monitoring server (zuul/lib/monitoring.py):
  /health/live answers 200 once that server runs, /health/ready only while the
  component is RUNNING or PAUSED (a graceful stop pauses first).
- Every build runs `ssh-add` on `[executor] private_key_file`, default
  `~/.ssh/id_rsa` (server.py, AnsibleJob), and a fresh ssh-agent that is
  SIGTERMed at the end and never waited for: an orphan for PID 1 to reap.
- The hdd sensor (zuul/executor/sensors/hdd.py) reads statvfs of state_dir.
- Upstream's Dockerfile: user `zuul` 10001 with home /var/lib/zuul; its base,
  opendevorg/python-base, sets ENTRYPOINT ["/usr/bin/dumb-init", "--"]
  (opendev system-config, docker/python-base/Dockerfile).
- dumb-init (v1.2.5 here, its --help): by default it forwards signals to the
  child's whole process group; --single-child forwards them to the child only.
  It reaps every orphan in either mode.
- OpenSSH (authfile.c, sshkey_perm_ok): a key file owned by the running user
  with any group or other permission bit is refused ("Permissions 0440 for
  ... are too open"); a file owned by another user is not checked.
- Kubernetes (kubernetes/kubernetes#57923, open): with a pod fsGroup, the
  kubelet makes every file of a Secret volume group-owned by fsGroup and
  group-readable, whatever defaultMode says.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

# The zuul user's home in the upstream image, and Zuul's default state_dir.
HOME = "/var/lib/zuul"
STATE_PATH = HOME
CONFIG_FILE = "/etc/zuul/zuul.conf"
# Zuul's default private_key_file is ~/.ssh/id_rsa: the key is mounted there,
# and HOME is set explicitly so that `~` is the same for uid 10001 and uid 0
# (whose home in the image is /root).
SSH_DIR = posixpath.join(HOME, ".ssh")
SSH_KEY_FILE = "id_rsa"
DEFAULT_PRIVATE_KEY = posixpath.join(SSH_DIR, SSH_KEY_FILE)
# Written by ssh-agent (its socket), Python's tempfile and Zuul's startup bwrap
# check (work_dir=/tmp, which bwrap binds and creates /tmp/tmp in).
TMP_PATH = "/tmp"

# PID 1: dumb-init reaps the ssh-agents every build leaves; --single-child
# sends the kubelet's SIGTERM to zuul-executor alone, which then stops
# gracefully, instead of also killing the log streamer in its process group
# (live logs would stop for the whole drain).
INIT = "/usr/bin/dumb-init"
INIT_COMMAND = (INIT, "--single-child", "--")
EXECUTOR_ARGS = ("zuul-executor", "-f", "-c", CONFIG_FILE)
# Programs that reap orphans when they run as PID 1, by basename.
INITS = frozenset({"dumb-init", "tini", "tini-static", "catatonit"})
SINGLE_CHILD_FLAGS = frozenset({"--single-child", "-c"})

# Secret file modes. uid 10001 reads a root-owned key through fsGroup (OpenSSH
# does not check a file it does not own); uid 0 owns the file, so it must be
# 0400 and the pod must set no fsGroup, which would make it 0440.
SECRET_MODE = 0o440
ROOT_KEY_MODE = 0o400


@dataclass(frozen=True)
class Probe:
    """One HTTP probe on Zuul's monitoring port (docs/executor-pod.md says why each timing)."""

    field: str  # container field: startupProbe, readinessProbe, livenessProbe
    path: str
    period: int
    timeout: int
    failures: int


PROBES: tuple[Probe, ...] = (
    # The HTTP server starts only after ZooKeeper answers, and a restart cannot
    # make ZooKeeper come sooner: 15 minutes, a ZooKeeper rolling restart.
    Probe("startupProbe", "/health/live", 10, 5, 90),
    # Ready while RUNNING or PAUSED; measured 2.5 s after ZooKeeper answered.
    Probe("readinessProbe", "/health/ready", 10, 5, 3),
    # Fails only when the process no longer answers at all; a restart kills
    # every running build, so 2 minutes of silence are tolerated first.
    Probe("livenessProbe", "/health/live", 30, 10, 4),
)

# The root file system is read-only; the executor writes only to its state
# volume (/var/lib/zuul, also HOME) and an emptyDir /tmp. Tried against the real
# executor image and bwrap: see docs/executor-pod.md, "Read-only root".
READ_ONLY_ROOT = True


def home_of(env: object, uid: int | None) -> str | None:
    """HOME of the executor process: the container's env, else the upstream image's passwd
    entry for the uid (root: /root; zuul 10001: /var/lib/zuul); None when it depends on the image.

    `~` in zuul.conf (private_key_file) expands against it; `env` is the container's
    env list, of any shape (wrong shapes are the OpenAPI engine's to report).
    """
    for entry in env if isinstance(env, list) else []:
        if isinstance(entry, dict) and entry.get("name") == "HOME":
            value = entry.get("value")
            return value if isinstance(value, str) else None
    if uid in (0, None):
        return "/root"
    return HOME if uid == 10001 else None

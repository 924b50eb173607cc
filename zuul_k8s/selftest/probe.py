#!/usr/bin/env python3
"""zuul-k8s self-test probe: exercise bwrap the way zuul-executor does, inside its pod.

This one file runs in the executor's own image, so it imports the standard
library only and keeps to Python 3.8 syntax. It prints one JSON document
(schemas/selftest-report.schema.json) and exits 0 when no check failed, 1
otherwise. It reports facts and outcomes only: the diagnosis that turns them
into causes and fixes lives in the zuul_k8s package, so it can improve without
a new probe in every image.

Run it as `python3 probe.py`, or feed it on stdin: `python3 - < probe.py`.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

PROBE_VERSION = "2"
REPORT_API_VERSION = "zuul-k8s/selftest-report/v2"
STDERR_EXCERPT = 2000
CHECK_TIMEOUT = 30.0
FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# hostUsers: false needs Linux 6.3+ (idmapped tmpfs mounts): docs/facts.md,
# "Node requirements for hostUsers: false".
MIN_KERNEL = (6, 3)
# --disable-userns, which Zuul uses when present, came with bubblewrap 0.8.0
# (zuul 14.3.0, zuul/driver/bubblewrap/__init__.py, _bwrap_command).
MIN_BWRAP = (0, 8, 0)

# Capability numbers, linux/include/uapi/linux/capability.h.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}

# What a runtime hides below /proc for procMount: Default: the OCI spec's maskedPaths
# (an empty tmpfs or /dev/null over each) and readonlyPaths (a read-only bind) as the
# runtimes fill them: containerd pkg/oci/spec.go (populateDefaultUnixSpec), moby
# oci/defaults.go (DefaultLinuxSpec), containers/common pkg/config/default.go
# (DefaultMaskedPaths, DefaultReadOnlyPaths; podman and CRI-O). Only these count as a
# masked /proc: another mount below /proc (binfmt_misc on /proc/sys/fs/binfmt_misc,
# say) hides nothing from bwrap.
MASKED_PROC_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
    "/proc/timer_stats",
)
READONLY_PROC_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# The one capability a root executor's jobs may keep: the kit renders drop ALL + SETFCAP
# for uid 0, and bwrap keeps a sandbox uid 0's capabilities (docs/facts.md, Zuul executor).
ROOT_JOB_CAPABILITIES = ("SETFCAP",)

# --disable-userns: bwrap writes 1 to user.max_user_namespaces in the sandbox's user
# namespace and then creates the one namespace that allows, so a job's
# unshare(CLONE_NEWUSER) fails with ENOSPC (bubblewrap 0.8.0, bubblewrap.c,
# opt_disable_userns; seen here: "unshare failed: No space left on device"). EPERM: a
# seccomp filter or LSM refused it first, which refuses it as well. Messages as glibc's
# strerror in the C locale, printed by util-linux unshare(1) and by the fallback below.
USERNS_REFUSALS = {"No space left on device": "ENOSPC", "Operation not permitted": "EPERM"}


# --- reading the environment -------------------------------------------------


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def read_int(path: str) -> int | None:
    text = read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def id_map(path: str) -> list[list[int]]:
    rows = []
    for line in (read(path) or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and all(f.isdigit() for f in fields):
            rows.append([int(f) for f in fields])
    return rows


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cap_names(mask: str) -> list[str]:
    value = int(mask, 16) if mask else 0
    names = []
    for bit in range(value.bit_length()):
        if value >> bit & 1:
            names.append(CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"CAP_{bit}")
    return names


def masked_proc_paths(mountinfo: str) -> list[str]:
    """The runtime's masked and read-only paths that are mount points: a masked /proc."""
    hidden = set(MASKED_PROC_PATHS) | set(READONLY_PROC_PATHS)
    paths = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in hidden:
            paths.append(fields[4])
    return sorted(set(paths))


def nested_userns_refusal(stderr: str) -> str | None:
    """ENOSPC or EPERM when unshare's last line says the kernel refused a user namespace."""
    lines = stderr.strip().splitlines()
    match = re.fullmatch(r"unshare: unshare failed: (.+)", lines[-1].strip()) if lines else None
    return USERNS_REFUSALS.get(match.group(1)) if match else None


def version_tuple(text: str, parts: int) -> tuple[int, ...]:
    match = re.search(r"(\d+(?:\.\d+)*)", text or "")
    numbers = [int(n) for n in match.group(1).split(".")] if match else []
    return tuple((numbers + [0] * parts)[:parts])


def lsm_labels() -> dict[str, str | None]:
    """The process's SELinux context and AppArmor profile, where each LSM runs.

    /proc/self/attr/current belongs to the first major LSM; AppArmor has its own
    subdirectory since Linux 5.8, so a label found only there is AppArmor's.
    """
    current = (read("/proc/self/attr/current") or "").strip("\x00\n ") or None
    apparmor = (read("/proc/self/attr/apparmor/current") or "").strip("\x00\n ") or None
    selinux = None
    if current and current != apparmor and re.match(r"^[^:\s]+:[^:\s]+:[^:\s]+", current):
        selinux = current
    if apparmor is None and current and current != selinux:
        apparmor = current
    return {"selinux_context": selinux, "apparmor_profile": apparmor}


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=FALLBACK_PATH)


def gather_environment() -> dict:
    status = status_fields(read("/proc/self/status") or "")
    uid_map = id_map("/proc/self/uid_map")
    bwrap = which("bwrap")
    bwrap_version = None
    if bwrap:
        try:
            out = subprocess.run(
                [bwrap, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, timeout=CHECK_TIMEOUT,
            ).stdout.strip()
            bwrap_version = out.split()[-1] if out else None
        except (OSError, subprocess.SubprocessError):
            bwrap_version = None
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = None
    env = {
        "kernel": os.uname().release,
        "uid": uid,
        "gid": os.getgid(),
        "user": user,
        "groups": sorted(os.getgroups()),
        "hostname": os.uname().nodename,
        "uid_map": uid_map,
        "gid_map": id_map("/proc/self/gid_map"),
        "own_user_namespace": bool(uid_map) and uid_map != [[0, 0, 4294967295]],
        "proc_masked_paths": masked_proc_paths(read("/proc/self/mountinfo") or ""),
        "seccomp": SECCOMP_MODES.get(status.get("Seccomp", ""), "unknown"),
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "cap_eff": cap_names(status.get("CapEff", "")),
        "cap_bnd": cap_names(status.get("CapBnd", "")),
        "max_user_namespaces": read_int("/proc/sys/user/max_user_namespaces"),
        "unprivileged_userns_clone": read_int("/proc/sys/kernel/unprivileged_userns_clone"),
        "apparmor_restrict_unprivileged_userns": read_int(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
        ),
        "bwrap_path": bwrap,
        "bwrap_version": bwrap_version,
        "zuul_bwrap_path": shutil.which("zuul-bwrap"),
        "python": sys.version.split()[0],
    }
    env["proc_masked"] = bool(env["proc_masked_paths"])
    env.update(lsm_labels())
    return env


# --- running commands ----------------------------------------------------------


class Outcome:
    """What one check found: its status, why, and the command behind it."""

    def __init__(self, status: str, message: str, command: list | None = None,
                 exit_code: int | None = None, stderr: str = "", stdout: str = "",
                 warning: str | None = None) -> None:
        self.status = status
        self.message = message
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        self.stdout = stdout
        self.warning = warning


class Ran:
    def __init__(self, argv: list, exit_code: int | None, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def outcome(self, status: str, message: str, warning: str | None = None) -> Outcome:
        return Outcome(status, message, self.argv, self.exit_code, self.stderr, self.stdout,
                       warning)


def run(argv: list, pass_fds: tuple = ()) -> Ran:
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
            timeout=CHECK_TIMEOUT, pass_fds=pass_fds,
        )
    except subprocess.TimeoutExpired:
        return Ran(argv, None, "", f"timed out after {CHECK_TIMEOUT}s")
    except OSError as exc:
        return Ran(argv, None, "", f"cannot run {argv[0]}: {exc.strerror}")
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr)


def failed(ran: Ran, what: str) -> Outcome:
    last = ran.stderr.strip().splitlines()[-1:] or [f"exit code {ran.exit_code}"]
    return ran.outcome("fail", f"{what}: {last[0]}")


class NoScratch(Exception):
    """No writable directory for the job's work and home dirs: the checks that need one fail."""


def make_scratch() -> str | None:
    """A private scratch dir: the default temp dir, else any writable candidate."""
    for where in (None, "/tmp", "/var/tmp", "/dev/shm", os.environ.get("HOME")):
        try:
            return tempfile.mkdtemp(prefix="zuul-k8s-probe-", dir=where)
        except OSError:
            continue
    return None


class Probe:
    """The state the checks share: the environment, a scratch dir, bwrap's path."""

    def __init__(self, env: dict, scratch: str | None) -> None:
        self.env = env
        self.bwrap = env["bwrap_path"]
        self.bwrap_version = version_tuple(env["bwrap_version"] or "", 3)
        self.work = self.home = self.readonly = self.secret = ""
        if scratch is not None:
            self.work, self.home, self.readonly = (os.path.join(scratch, name)
                                                   for name in ("work", "home", "readonly"))
            for path in (self.work, self.home, self.readonly):
                os.mkdir(path)
            self.secret = os.path.join(scratch, "outside-the-binds")
            with open(self.secret, "w") as handle:
                handle.write("the sandbox must not see this file\n")

    def need_scratch(self) -> None:
        if not self.work:
            raise NoScratch("no writable directory for the job's work and home dirs (tried the "
                            "temp dir, /tmp, /var/tmp, /dev/shm and HOME): mount an emptyDir")

    def bwrap_prefix(self) -> list:
        """Zuul starts bwrap through `setpriv --ambient-caps -all`, and so does the probe.

        Without it, a non-root process holding ambient capabilities makes bwrap
        stop with "Unexpected capabilities but not setuid" (zuul 14.3.0,
        zuul/driver/bubblewrap/__init__.py, _bwrap_command).
        """
        setpriv = which("setpriv")
        return [setpriv, "--ambient-caps", "-all"] if setpriv else []

    def plain_bwrap(self, *args: str) -> Ran:
        return run([*self.bwrap_prefix(), self.bwrap, *list(args)])

    def userns_flags(self) -> list:
        # Zuul adds these when bwrap >= 0.8.0 and user namespaces are enabled
        # (zuul 14.3.0, zuul/driver/bubblewrap/__init__.py, _bwrap_command).
        limit = self.env["max_user_namespaces"]
        if self.bwrap_version >= MIN_BWRAP and (limit is None or limit >= 1):
            return ["--unshare-user", "--disable-userns"]
        return []

    def executor_line(self, command: list, share_net: bool = True,
                      ro_paths: tuple = ()) -> tuple:
        """Zuul's bwrap command line for a job, and the fds bwrap reads.

        The same binds, namespaces and identity as zuul-executor builds them
        (zuul 14.3.0, zuul/driver/bubblewrap/__init__.py: _bwrap_command and
        BubblewrapExecutionContext.getPopen), with this probe's scratch dirs as
        the job's work and home dirs.
        """
        self.need_scratch()
        uid, gid = os.getuid(), os.getgid()
        prefix = self.bwrap_prefix()
        choom = which("choom")
        if prefix and choom:
            adj = min(1000, (read_int("/proc/self/oom_score_adj") or 0) + 200)
            prefix += [choom, "-n", str(adj), "--"]
        line = [
            self.bwrap,
            "--tmpfs", "/tmp",
            "--dir", "/var",
            "--dir", "/var/tmp",
            "--dir", f"/run/user/{uid}",
            "--ro-bind", "/usr", "/usr",
            "--ro-bind", "/lib", "/lib",
            "--ro-bind", "/bin", "/bin",
            "--ro-bind", "/sbin", "/sbin",
            "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf",
            "--ro-bind", "/etc/hosts", "/etc/hosts",
            "--ro-bind", "/etc/localtime", "/etc/localtime",
            "--bind", self.work, self.work,
            "--tmpfs", self.work + "/tmp",
            "--bind", self.home, self.home,
            "--proc", "/proc",
            "--dev", "/dev",
            "--chdir", self.work,
            "--unshare-all",
            "--die-with-parent",
            "--uid", str(uid),
            "--gid", str(gid),
        ]
        fds = []
        for target, entry in (("/etc/passwd", self._passwd_line()),
                              ("/etc/group", self._group_line())):
            read_end, write_end = os.pipe()
            os.write(write_end, entry.encode() + b"\n")
            os.close(write_end)
            fds.append(read_end)
            line += ["--file", str(read_end), target]
        line += self.userns_flags()
        for path in ("/lib64", "/etc/nsswitch.conf", "/etc/lsb-release.d", "/etc/alternatives",
                     "/etc/ssl/certs", "/etc/subuid", "/etc/containers"):
            if os.path.exists(path):
                line += ["--ro-bind", path, path]
        for path in ro_paths:
            line += ["--ro-bind", path, path]
        if share_net:
            line.append("--share-net")
        return prefix + line + ["--"] + command, tuple(fds)

    def _passwd_line(self) -> str:
        uid = os.getuid()
        try:
            entry = list(pwd.getpwuid(uid))
        except KeyError:  # Zuul itself needs the entry; the probe makes one up
            entry = ["executor", "x", uid, os.getgid(), "", self.home, "/bin/sh"]
        entry[5] = self.home
        return ":".join(str(field) for field in entry)

    def _group_line(self) -> str:
        gid = os.getgid()
        try:
            group = grp.getgrgid(gid)
            return f"{group.gr_name}:x:{gid}:{','.join(group.gr_mem)}"
        except KeyError:
            return f"executor:x:{gid}:"

    def in_sandbox(self, command: list, share_net: bool = True, ro_paths: tuple = ()) -> Ran:
        argv, fds = self.executor_line(command, share_net=share_net, ro_paths=ro_paths)
        try:
            return run(argv, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)


# --- the checks ----------------------------------------------------------------


def check_kernel(probe: Probe) -> Outcome:
    release = probe.env["kernel"]
    command = ["read", "/proc/sys/kernel/osrelease"]
    wanted = "{}.{}".format(*MIN_KERNEL)
    if version_tuple(release, 2) >= MIN_KERNEL:
        return Outcome("pass", f"Linux {release} ({wanted} or newer)", command)
    return Outcome("fail", f"Linux {release} is older than {wanted}, which pods with hostUsers: false need "
                   "(idmapped tmpfs mounts)", command)


def check_userns(probe: Probe) -> Outcome:
    env = probe.env
    command = ["read", "/proc/self/uid_map", "/proc/self/gid_map"]
    maps = "uid_map {}, gid_map {}".format(env["uid_map"], env["gid_map"])
    if env["own_user_namespace"]:
        return Outcome("pass", f"the pod has its own user namespace ({maps})", command)
    return Outcome("fail", f"the pod shares the node's user namespace ({maps})", command)


def check_proc(probe: Probe) -> Outcome:
    paths = probe.env["proc_masked_paths"]
    command = ["read", "/proc/self/mountinfo"]
    if not paths:
        return Outcome("pass", "/proc is not masked: no path a runtime masks or makes read-only "
                       "is mounted over", command)
    shown = ", ".join(paths[:6]) + (" ..." if len(paths) > 6 else "")
    return Outcome("fail", f"/proc is masked: {len(paths)} of the paths a runtime masks or makes "
                   f"read-only are mounted over ({shown})", command)


def check_userns_limit(probe: Probe) -> Outcome:
    env = probe.env
    command = ["read", "/proc/sys/user/max_user_namespaces",
               "/proc/sys/kernel/unprivileged_userns_clone"]
    limit, clone = env["max_user_namespaces"], env["unprivileged_userns_clone"]
    if limit == 0:
        return Outcome("fail", "user.max_user_namespaces is 0: user namespaces are disabled",
                       command)
    if clone == 0:
        return Outcome("fail", "kernel.unprivileged_userns_clone is 0: unprivileged user "
                       "namespaces are disabled", command)
    return Outcome("pass", "user.max_user_namespaces is {}{}".format(
        limit, "" if clone is None else f", kernel.unprivileged_userns_clone is {clone}"),
        command)


def check_bwrap_present(probe: Probe) -> Outcome:
    env = probe.env
    if not env["bwrap_path"]:
        path = os.environ.get("PATH", FALLBACK_PATH)
        return Outcome("fail", f"bwrap is not on PATH ({path}): the image lacks bubblewrap",
                       ["which", "bwrap"])
    command = [env["bwrap_path"], "--version"]
    if not env["bwrap_version"]:
        return Outcome("fail", "bwrap --version printed no version", command)
    wanted = ".".join(str(n) for n in MIN_BWRAP)
    if probe.bwrap_version < MIN_BWRAP:
        return Outcome("fail", "bubblewrap {} is older than {}, which --disable-userns needs"
                       .format(env["bwrap_version"], wanted), command)
    return Outcome("pass", "bubblewrap {} at {}".format(env["bwrap_version"], env["bwrap_path"]),
                   command)


def check_bwrap_userns(probe: Probe) -> Outcome:
    ran = probe.plain_bwrap("--unshare-user", "--ro-bind", "/", "/", "--", "true")
    if ran.exit_code == 0:
        return ran.outcome("pass", "bwrap created a user namespace")
    return failed(ran, "bwrap cannot create a user namespace")


def check_bwrap_proc(probe: Probe) -> Outcome:
    ran = probe.plain_bwrap("--unshare-user", "--unshare-pid", "--ro-bind", "/", "/",
                            "--proc", "/proc", "--", "true")
    if ran.exit_code == 0:
        return ran.outcome("pass", "bwrap mounted a fresh /proc in a new PID namespace")
    return failed(ran, "bwrap cannot mount /proc in a new PID namespace")


def check_bwrap_dev(probe: Probe) -> Outcome:
    ran = probe.plain_bwrap("--unshare-user", "--ro-bind", "/", "/", "--dev", "/dev",
                            "--", "true")
    if ran.exit_code == 0:
        return ran.outcome("pass", "bwrap set up /dev (tmpfs, device nodes, devpts)")
    return failed(ran, "bwrap cannot set up /dev")


def check_executor_line(probe: Probe) -> Outcome:
    ran = probe.in_sandbox(["id"])
    if ran.exit_code == 0 and ran.stdout.startswith("uid="):
        return ran.outcome("pass", f"the executor's bwrap line ran id: {ran.stdout.strip()}")
    return failed(ran, "the executor's bwrap line cannot run a command")


def check_pid_isolation(probe: Probe) -> Outcome:
    token = "zuul-k8s-sentinel-" + uuid.uuid4().hex
    # Stands in for the executor's own processes: it runs outside the sandbox.
    # Its own session, so that killing the group also ends its `sleep`.
    sentinel = subprocess.Popen(["sh", "-c", "sleep 60; :", token], stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        ran = probe.in_sandbox(["sh", "-c", 'for f in /proc/[0-9]*/cmdline; do '
                                'tr "\\0" " " < "$f"; echo; done'])
    finally:
        os.killpg(sentinel.pid, signal.SIGKILL)
        sentinel.wait()
    if ran.exit_code != 0:
        return failed(ran, "cannot list the sandbox's processes")
    seen = [line for line in ran.stdout.splitlines() if line.strip()]
    if not seen:
        return ran.outcome("fail", "the sandbox lists no process at all, not even itself")
    if any(token in line for line in seen):
        return ran.outcome("fail", "the sandbox sees processes outside it (the probe's sentinel "
                           f"among {len(seen)} processes)")
    return ran.outcome("pass", f"the sandbox sees only its own {len(seen)} processes")


def check_readonly(probe: Probe) -> Outcome:
    probe.need_scratch()
    target = os.path.join(probe.readonly, "written")
    script = 'touch "$1" && echo WROTE "$1"; touch /usr/.zuul-k8s-probe && echo WROTE /usr'
    ran = probe.in_sandbox(["sh", "-c", script, "sh", target], ro_paths=(probe.readonly,))
    if "WROTE" in ran.stdout or os.path.exists(target):
        wrote = "; ".join(ran.stdout.split())
        return ran.outcome("fail", f"a read-only bind accepted a write: {wrote}")
    if "Read-only file system" not in ran.stderr:
        return failed(ran, "writes failed, but not because the binds are read-only")
    return ran.outcome("pass", "read-only binds refused writes (Read-only file system)")


def check_hidden(probe: Probe) -> Outcome:
    probe.need_scratch()
    paths = [probe.secret] + [p for p in ("/etc/shadow", "/root") if os.path.exists(p)]
    script = 'for p in "$@"; do if [ -e "$p" ]; then echo VISIBLE "$p"; fi; done; echo DONE'
    ran = probe.in_sandbox(["sh", "-c", script, "sh", *paths])
    if ran.exit_code != 0 or "DONE" not in ran.stdout:
        return failed(ran, "cannot look for paths outside the binds")
    visible = [line.split(" ", 1)[1] for line in ran.stdout.splitlines()
               if line.startswith("VISIBLE ")]
    if visible:
        return ran.outcome("fail", "paths outside the binds are visible: {}".format(", ".join(visible)))
    return ran.outcome("pass", "paths outside the binds are invisible: {}".format(", ".join(paths)))


def interfaces(proc_net_dev: str) -> list[str]:
    return sorted(line.split(":", 1)[0].strip() for line in proc_net_dev.splitlines()[2:]
                  if ":" in line)


def check_network(probe: Probe) -> Outcome:
    outside = interfaces(read("/proc/net/dev") or "")
    ran = probe.in_sandbox(["cat", "/proc/net/dev"], share_net=False)
    if ran.exit_code != 0:
        return failed(ran, "cannot list the sandbox's network interfaces")
    inside = interfaces(ran.stdout)
    if inside == ["lo"]:
        return ran.outcome("pass", "with --unshare-net only lo exists (outside: {})".format(", ".join(outside)))
    return ran.outcome("fail", "with --unshare-net the sandbox has %s" % (", ".join(inside) or
                                                                         "no interface"))


def check_capabilities(probe: Probe) -> Outcome:
    ran = probe.in_sandbox(["cat", "/proc/self/status"])
    if ran.exit_code != 0:
        return failed(ran, "cannot read the job's capabilities")
    status = status_fields(ran.stdout)
    effective, bounding = cap_names(status.get("CapEff", "")), cap_names(status.get("CapBnd", ""))
    if status.get("NoNewPrivs") != "1":
        return ran.outcome("fail", "the job may gain privileges (NoNewPrivs is not set)")
    if not effective:
        return ran.outcome("pass", "the job holds no effective capability and NoNewPrivs is set")
    beyond = sorted(set(effective) - set(probe.env["cap_bnd"]))
    extra = sorted(set(effective) - set(ROOT_JOB_CAPABILITIES))
    if os.getuid() == 0 and not beyond and not extra:
        # bwrap keeps capabilities for a sandbox uid 0 (docs/facts.md, Zuul executor):
        # SETFCAP alone, the kit's root setting, is a reason to prefer uid 10001, not a
        # broken sandbox.
        return ran.outcome(
            "pass", "the job holds only the container's own capabilities ({}), inside its own "
            "user namespace".format(", ".join(effective)),
            warning="a root executor's jobs keep the container's capabilities ({}) inside their "
            "sandbox; run the executor as uid 10001 so they hold none".format(", ".join(effective)))
    if os.getuid() == 0 and not beyond:
        return ran.outcome(
            "fail", "a root executor's jobs keep the container's capabilities, and these are "
            "more than {}: {} (drop ALL and add only {}, or run as uid 10001)".format(
                ", ".join(ROOT_JOB_CAPABILITIES), ", ".join(extra),
                ", ".join(ROOT_JOB_CAPABILITIES)))
    return ran.outcome("fail", "the job holds capabilities {} (bounding: {}){}".format(
        ", ".join(effective), ", ".join(bounding),
        "; beyond the container's: " + ", ".join(beyond) if beyond else ""))


def nested_userns_command() -> list:
    """A command that tries to create a user namespace and says why the kernel refused."""
    unshare = which("unshare")
    if unshare and unshare.startswith(("/usr/", "/bin/", "/sbin/")):
        # The C locale, so that the refusal reads the same in any image.
        return ["env", "LC_ALL=C", "unshare", "--user", "true"]
    return [os.path.realpath(sys.executable), "-I", "-S", "-c",
            "import ctypes,os,sys; libc=ctypes.CDLL(None, use_errno=True); "
            "r=libc.unshare(0x10000000); e=ctypes.get_errno(); "
            "sys.exit('unshare: unshare failed: %s' % os.strerror(e) if r else 0)"]


def judge_nested_userns(ran: Ran) -> Outcome:
    """Pass only when the kernel refused the namespace with the errno --disable-userns causes."""
    if ran.exit_code == 0:
        return ran.outcome("fail", "a job created a nested user namespace despite "
                           "--disable-userns")
    errno_name = nested_userns_refusal(ran.stderr)
    if ran.exit_code is None or errno_name is None:
        return failed(ran, "cannot tell whether a nested user namespace is refused (no "
                      "ENOSPC or EPERM from unshare)")
    refusal = ran.stderr.strip().splitlines()[-1].strip()
    return ran.outcome("pass", f"a nested user namespace was refused ({errno_name}): {refusal}")


def check_nested_userns(probe: Probe) -> Outcome:
    if "--disable-userns" not in probe.userns_flags():
        return Outcome("skip", "the executor's line has no --disable-userns here "
                       "(bubblewrap {})".format(probe.env["bwrap_version"]))
    return judge_nested_userns(probe.in_sandbox(nested_userns_command()))


def check_hostname(probe: Probe) -> Outcome:
    outside = os.readlink("/proc/self/ns/uts")
    ran = probe.in_sandbox(["readlink", "/proc/self/ns/uts"])
    if ran.exit_code != 0:
        return failed(ran, "cannot read the sandbox's UTS namespace")
    inside = ran.stdout.strip()
    if inside and inside != outside:
        return ran.outcome("pass", "the sandbox has its own UTS namespace, so its own hostname "
                           f"({inside}, outside {outside})")
    return ran.outcome("fail", f"the sandbox shares the executor's hostname (UTS namespace {outside})")


def check_zuul_bwrap(probe: Probe) -> Outcome:
    zuul_bwrap = probe.env["zuul_bwrap_path"]
    if not zuul_bwrap:
        return Outcome("skip", "zuul-bwrap is not on PATH: this image has no Zuul")
    probe.need_scratch()
    # zuul-bwrap first runs Zuul's start-up check (id under bwrap), then the
    # command; it exits 0 even when the command fails, so judge by the output.
    ran = run([zuul_bwrap, probe.work, probe.home, "id"])
    if ran.exit_code == 0 and re.search(r"^uid=\d+", ran.stdout, re.M):
        return ran.outcome("pass", f"Zuul's own wrapper ran id: {ran.stdout.strip()}")
    bwrap_lines = [line for line in ran.stderr.splitlines() if line.startswith("bwrap:")]
    if bwrap_lines:
        return ran.outcome("fail", f"Zuul's own wrapper failed: {bwrap_lines[-1]}")
    return failed(ran, "Zuul's own wrapper failed")


# (id, title, ids that must pass first, check). The order is the report's order.
CHECKS = (
    ("env.kernel", "the kernel is new enough for pods with their own user namespace", (),
     check_kernel),
    ("env.userns", "the pod has its own user namespace (uid/gid maps)", (), check_userns),
    ("env.proc", "/proc is not masked", (), check_proc),
    ("env.userns-limit", "user namespaces are enabled (user.max_user_namespaces)", (),
     check_userns_limit),
    ("env.bwrap", "bwrap is installed and new enough", (), check_bwrap_present),
    ("bwrap.userns", "bwrap can create a user namespace", ("env.bwrap",), check_bwrap_userns),
    ("bwrap.proc", "bwrap can mount a fresh /proc in a new PID namespace", ("bwrap.userns",),
     check_bwrap_proc),
    ("bwrap.dev", "bwrap can set up /dev", ("bwrap.userns",), check_bwrap_dev),
    ("bwrap.executor", "the executor's bwrap line runs a command", ("env.bwrap",),
     check_executor_line),
    ("isolation.pid", "only the sandbox's processes are visible", ("bwrap.executor",),
     check_pid_isolation),
    ("isolation.readonly", "read-only binds refuse writes", ("bwrap.executor",), check_readonly),
    ("isolation.hidden", "files outside the binds are invisible", ("bwrap.executor",),
     check_hidden),
    ("isolation.network", "with --unshare-net only lo exists", ("bwrap.executor",),
     check_network),
    ("isolation.capabilities", "the job holds no effective capability", ("bwrap.executor",),
     check_capabilities),
    ("isolation.nested-userns", "a nested user namespace is refused (--disable-userns)",
     ("bwrap.executor",), check_nested_userns),
    ("isolation.hostname", "the hostname is the sandbox's own", ("bwrap.executor",),
     check_hostname),
    ("zuul.bwrap", "Zuul's own wrapper (zuul-bwrap) runs id", ("env.bwrap",), check_zuul_bwrap),
)


def excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= STDERR_EXCERPT else "..." + text[-STDERR_EXCERPT:]


def run_checks(probe: object, checks: tuple = CHECKS) -> list:
    """Each check in order, skipped when one it needs did not pass; a check's bug is a failure."""
    results = []
    status_of = {}
    for check_id, title, needs, function in checks:
        start = time.monotonic()
        blocked = [need for need in needs if status_of.get(need) != "pass"]
        if blocked:
            outcome = Outcome("skip", "needs {}, which did not pass".format(", ".join(blocked)))
        else:
            try:
                outcome = function(probe)
            except NoScratch as exc:
                outcome = Outcome("fail", str(exc))
            except Exception as exc:  # a probe bug must still yield a report
                outcome = Outcome("fail", f"the probe's check raised {type(exc).__name__}: {exc}")
        status_of[check_id] = outcome.status
        results.append({
            "id": check_id,
            "title": title,
            "status": outcome.status,
            "message": outcome.message,
            "warning": outcome.warning,
            "duration_ms": round((time.monotonic() - start) * 1000, 1),
            "command": [str(arg) for arg in outcome.command] if outcome.command else None,
            "exit_code": outcome.exit_code,
            "stdout": excerpt(outcome.stdout),
            "stderr": excerpt(outcome.stderr),
        })
    return results


def make_report(kind: str, version: str, started: float, started_at: str,
                environment_ms: float, env: dict, checks: list, **extra: object) -> dict:
    """The report document (schemas/selftest-report.schema.json), for the probe and the job."""
    summary = {status: sum(1 for c in checks if c["status"] == status)
               for status in ("pass", "fail", "skip")}
    report = {
        "apiVersion": REPORT_API_VERSION,
        "kind": kind,
        "probeVersion": version,
        "startedAt": started_at,
        "durationMs": round((time.monotonic() - started) * 1000, 1),
        "environmentMs": environment_ms,
        "ok": summary["fail"] == 0,
        "summary": summary,
        "environment": env,
        "checks": checks,
    }
    report.update(extra)
    return report


def main() -> int:
    if not os.environ.get("PATH"):
        os.environ["PATH"] = FALLBACK_PATH
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    env = gather_environment()
    environment_ms = round((time.monotonic() - started) * 1000, 1)
    scratch = make_scratch()
    try:
        checks = run_checks(Probe(env, scratch))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report = make_report("probe", PROBE_VERSION, started, started_at, environment_ms, env, checks)
    json.dump(report, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

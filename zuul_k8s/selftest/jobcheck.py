#!/usr/bin/env python3
"""zuul-k8s self-test job checker: what an untrusted build can reach, checked from inside it.

The zuul-k8s-selftest job runs this file on the executor (localhost), so it
runs inside the build's real bwrap sandbox, built by zuul-executor's own code.
Where the probe (probe.py, beside this file) imitates the executor's bwrap
line, this looks out from a real build: its processes, /proc and uid map, the
executor's secrets and state, capabilities, seccomp, nested user namespaces,
a Kubernetes token, and what answers on the network. It shares the probe's
facts, report format and check runner; standard library only, Python 3.8.

It writes the report as zuul_return data (an artifact whose metadata is the
report, so zuul-web's build API carries it) and as a JSON file in the build's
logs, prints a line per check, and exits 0 when no check failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid

if __package__:
    from zuul_k8s.selftest import probe
else:  # run as a script: probe.py sits beside this file in the job's files/
    import probe  # type: ignore[no-redef]

CHECKER_VERSION = "1"
ARTIFACT_NAME = "zuul-k8s-selftest-report"
REPORT_FILE = "zuul-k8s-selftest.json"
NETWORK_TIMEOUT = 3.0
TOKEN_SEARCH_SECONDS = 20.0

# Where the kubelet mounts a service-account token (the projected volume
# kube-api-access-*), and the env vars it sets for the API server.
TOKEN_PATHS = (
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/run/secrets/kubernetes.io/serviceaccount/token",
)
TOKEN_DIR_NAMES = ("serviceaccount", "kube-api-access")
# Pseudo filesystems the token search does not walk.
SEARCH_SKIP = ("/proc", "/sys", "/dev")
METADATA_URL = "http://169.254.169.254/"
API_SERVER_NAME = "kubernetes.default.svc"

# The mounts bwrap gives every build for itself (zuul 14.3.0,
# zuul/driver/bubblewrap/__init__.py, _bwrap_command): its own root tmpfs, /tmp,
# /proc and /dev; any other writable mount is a path from outside the build.
SANDBOX_OWN_MOUNTS = ("/", "/tmp", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")


class Build:
    """What the checks share: the sandbox's facts and the build's and executor's paths."""

    def __init__(self, args: argparse.Namespace, env: dict) -> None:
        self.env = env
        self.work_dir = os.path.realpath(args.work_dir)
        self.job_dir = os.path.dirname(self.work_dir)
        self.builds_dir = os.path.dirname(self.job_dir)
        self.uuid = args.build or os.path.basename(self.job_dir)
        self.playbook_dir = args.playbook_dir or ""
        self.paths = {
            "zuul_conf": args.zuul_conf,
            "ssh_key": args.ssh_key,
            "tls_key": args.tls_key,
            "state_dir": args.state_dir,
            "git_dir": args.git_dir or os.path.join(args.state_dir, "executor-git"),
            "command_socket": args.command_socket or os.path.join(args.state_dir,
                                                                  "executor.socket"),
        }
        self.metadata_url = args.metadata_url
        # The build's own writable places: work dir (and its tmpfs tmp), home,
        # and Ansible's cache (zuul/executor/server.py, JobDir and runAnsible).
        self.own_writable = {self.work_dir, os.path.join(self.work_dir, "tmp"),
                             os.path.join(self.job_dir, "home"),
                             os.path.join(self.job_dir, ".ansible")}

    def context(self) -> str:
        """trusted or untrusted, from where Zuul put the playbook (JobDir trusted_root/untrusted_root)."""
        for name in ("untrusted", "trusted"):
            if self.playbook_dir.startswith(os.path.join(self.job_dir, name) + os.sep):
                return name
        return "unknown"


# --- small readers -------------------------------------------------------------


def mounts(mountinfo: str) -> list:
    """(mount point, per-mount options, fs type) per line of /proc/self/mountinfo."""
    rows = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 6:
            continue
        after = line.split(" - ", 1)[1].split()
        point = fields[4].replace("\\040", " ")
        rows.append((point, fields[5].split(","), after[0] if after else ""))
    return rows


def proc_cmdlines() -> dict:
    """pid -> argv of every process this /proc shows."""
    seen = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            raw = probe.read(f"/proc/{name}/cmdline")
            if raw is not None:
                seen[int(name)] = [arg for arg in raw.split("\x00") if arg]
    return seen


def is_executor(argv: list) -> bool:
    """zuul-executor itself: the program, or the script its interpreter or dumb-init runs.

    Only the first words count: a build's own commands may name the executor's host
    (a StatefulSet executor is zuul-executor-0.zuul-executor...) in their arguments.
    """
    return any(os.path.basename(arg) == "zuul-executor" for arg in argv[:3])


def try_write(path: str) -> tuple:
    """(written, why): create a file in a directory, or open a file for appending; leave no trace."""
    try:
        if os.path.isdir(path):
            target = os.path.join(path, ".zuul-k8s-selftest-" + uuid.uuid4().hex)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(target)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.close(fd)
        return True, "written"
    except OSError as exc:
        return False, errno.errorcode.get(exc.errno or 0, str(exc.errno))


def try_read(path: str) -> tuple:
    """(read, why): list a directory or read a byte of a file, never printing what it holds."""
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
        return True, "read"
    except OSError as exc:
        return False, errno.errorcode.get(exc.errno or 0, str(exc.errno))


# --- the checks ------------------------------------------------------------------


def check_context(build: Build) -> probe.Outcome:
    context = build.context()
    command = ["read", "playbook_dir", build.playbook_dir or "(not given)"]
    if context == "untrusted":
        return probe.Outcome("pass", "the playbook runs untrusted, as any project's job would",
                             command)
    if context == "trusted":
        return probe.Outcome("fail", "the playbook runs trusted (the job is defined in a config "
                             "project): the checks show what trusted playbooks reach, not what "
                             "an untrusted job reaches", command)
    return probe.Outcome("fail", "cannot tell whether the playbook runs trusted or untrusted: "
                         f"{build.playbook_dir or 'no --playbook-dir'} is not below the build's "
                         f"dir {build.job_dir}", command)


def check_processes(build: Build) -> probe.Outcome:
    seen = proc_cmdlines()
    command = ["read", "/proc/[0-9]*/cmdline"]
    executor = sorted(pid for pid, argv in seen.items() if is_executor(argv))
    first = (probe.read("/proc/1/comm") or "").strip()
    if executor:
        return probe.Outcome("fail", "the build sees the executor's processes (pids {}) among {} "
                             "processes".format(", ".join(map(str, executor)), len(seen)), command)
    if first != "bwrap":
        return probe.Outcome("fail", f"pid 1 is {first or 'unreadable'}, not bwrap: the build shares "
                             "a PID namespace with something else", command)
    return probe.Outcome("pass", f"the build sees only its own {len(seen)} processes (pid 1 is bwrap)",
                         command)


def check_proc(build: Build) -> probe.Outcome:
    status = probe.status_fields(probe.read("/proc/self/status") or "")
    nspid = status.get("NSpid", "").split()
    proc = [row for row in mounts(probe.read("/proc/self/mountinfo") or "") if row[0] == "/proc"]
    command = ["read", "/proc/self/status", "/proc/self/mountinfo"]
    if not proc or proc[-1][2] != "proc":
        return probe.Outcome("fail", "/proc is not a proc mount of the build's own: {}".format(
            proc[-1] if proc else "no /proc mount"), command)
    if len(nspid) != 1:
        return probe.Outcome("fail", "/proc belongs to an outer PID namespace: NSpid {} (one entry "
                             "when /proc is the build's own)".format(" ".join(nspid) or "missing"),
                             command)
    return probe.Outcome("pass", f"/proc is the build's own (a proc mount; NSpid {nspid[0]})", command)


def check_uid_map(build: Build) -> probe.Outcome:
    env = build.env
    command = ["read", "/proc/self/uid_map", "/proc/self/gid_map"]
    uid_map, gid_map = env["uid_map"], env["gid_map"]
    maps = f"uid_map {uid_map}, gid_map {gid_map}"
    # bwrap --unshare-user --uid U maps U to the executor's uid, one id only
    # (bubblewrap.c, write_uid_gid_map).
    if (len(uid_map) == 1 and uid_map[0][0] == env["uid"] and uid_map[0][2] == 1
            and len(gid_map) == 1 and gid_map[0][0] == env["gid"] and gid_map[0][2] == 1):
        return probe.Outcome("pass", f"the build's own user namespace, mapping one uid and gid ({maps})",
                             command)
    return probe.Outcome("fail", f"not the one-id map bwrap writes: {maps}", command)


def exposure(path: str, what: str, readonly_ok: bool = False) -> probe.Outcome:
    """Pass when `path` is invisible from the build (or, with readonly_ok, visible but read-only)."""
    if not os.path.lexists(path):
        return probe.Outcome("pass", f"{what} ({path}) is not visible from the build", ["read", path])
    readable, read_why = try_read(path)
    writable, write_why = try_write(path)
    command = ["write", path]
    if writable:
        return probe.Outcome("fail", f"the build can write {what} ({path})", command)
    if readonly_ok:
        return probe.Outcome("pass", f"{what} ({path}) is visible but read-only ({write_why})",
                             command, warning=f"builds see {what} ({path}) read-only"
                             + (" and can read it" if readable else ""))
    state = "and can read it" if readable else f"but cannot read it ({read_why})"
    return probe.Outcome("fail", f"the build sees {what} ({path}) {state}", command)


def check_zuul_conf(build: Build) -> probe.Outcome:
    return exposure(build.paths["zuul_conf"], "zuul.conf")


def check_ssh_key(build: Build) -> probe.Outcome:
    return exposure(build.paths["ssh_key"], "the executor's SSH private key")


def check_tls_key(build: Build) -> probe.Outcome:
    return exposure(build.paths["tls_key"], "the ZooKeeper client TLS key")


def check_other_builds(build: Build) -> probe.Outcome:
    command = ["read", build.builds_dir]
    try:
        entries = sorted(os.listdir(build.builds_dir))
    except OSError as exc:
        return probe.Outcome("pass", f"the builds dir {build.builds_dir} cannot be listed "
                             f"({errno.errorcode.get(exc.errno or 0, exc.errno)})", command)
    others = [name for name in entries if name != build.uuid]
    if others:
        shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        return probe.Outcome("fail", f"the build sees {len(others)} other entries in the builds "
                             f"dir {build.builds_dir}: {shown}", command)
    return probe.Outcome("pass", f"the builds dir {build.builds_dir} shows this build only", command)


def check_git_cache(build: Build) -> probe.Outcome:
    return exposure(build.paths["git_dir"], "the executor's git cache", readonly_ok=True)


def check_command_socket(build: Build) -> probe.Outcome:
    path = build.paths["command_socket"]
    if not os.path.lexists(path):
        return probe.Outcome("pass", f"the executor's command socket ({path}) is not visible",
                             ["read", path])
    command = ["connect", path]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(NETWORK_TIMEOUT)
        sock.connect(path)
        return probe.Outcome("fail", f"the build can connect to the executor's command socket "
                             f"({path}): it could stop or pause the executor", command)
    except OSError as exc:
        why = errno.errorcode.get(exc.errno or 0, str(exc))
        return probe.Outcome("fail", f"the build sees the executor's command socket ({path}); "
                             f"connecting failed ({why})", command)
    finally:
        sock.close()


def check_writes(build: Build) -> probe.Outcome:
    rows = mounts(probe.read("/proc/self/mountinfo") or "")
    allowed = set(SANDBOX_OWN_MOUNTS) | build.own_writable
    if not build.own_writable & {row[0] for row in rows}:
        return probe.Outcome("fail", f"the work dir {build.work_dir} is not a mount of its own: this "
                             "does not look like a bwrap sandbox", ["read", "/proc/self/mountinfo"])
    written, refused = [], []
    for point, _, _ in rows:
        if point in allowed or point.startswith(("/proc/", "/dev/")):
            continue
        ok, why = try_write(point)
        (written if ok else refused).append(point if ok else f"{point} ({why})")
    work_ok, work_why = try_write(build.work_dir)
    command = ["write", *[row[0] for row in rows if row[0] not in allowed]]
    if not work_ok:
        return probe.Outcome("fail", f"cannot even write the work dir ({work_why}): the check "
                             "cannot tell", command)
    if written:
        return probe.Outcome("fail", "the build wrote outside its own dirs: {}".format(
            ", ".join(written)), command, stdout="\n".join(refused))
    return probe.Outcome("pass", f"writes to all {len(refused)} mounts from outside the build "
                         "failed; the work dir takes them", command, stdout="\n".join(refused))


def check_capabilities(build: Build) -> probe.Outcome:
    status = probe.status_fields(probe.read("/proc/self/status") or "")
    held = set()
    for field in ("CapEff", "CapPrm", "CapAmb"):
        held.update(probe.cap_names(status.get(field, "")))
    command = ["read", "/proc/self/status"]
    names = ", ".join(sorted(held))
    if not held:
        return probe.Outcome("pass", "the build holds no capability (effective, permitted, ambient)",
                             command)
    extra = sorted(held - set(probe.ROOT_JOB_CAPABILITIES))
    if os.getuid() == 0 and not extra:
        return probe.Outcome(
            "pass", f"the build holds only {names}, inside its own user namespace", command,
            warning=f"a root executor's builds keep {names}; run the executor as uid 10001 so "
            "they hold none")
    if os.getuid() == 0:
        return probe.Outcome("fail", "a root executor's build holds more than {}: {}".format(
            ", ".join(probe.ROOT_JOB_CAPABILITIES), ", ".join(extra)), command)
    return probe.Outcome("fail", f"a non-root build holds capabilities: {names}", command)


def check_seccomp(build: Build) -> probe.Outcome:
    mode = build.env["seccomp"]
    command = ["read", "/proc/self/status"]
    if mode == "filter":
        return probe.Outcome("pass", "a seccomp filter confines the build (the pod's profile)", command)
    return probe.Outcome("fail", f"seccomp mode is {mode}: no filter confines the build", command)


def check_no_new_privs(build: Build) -> probe.Outcome:
    command = ["read", "/proc/self/status"]
    if build.env["no_new_privs"]:
        return probe.Outcome("pass", "NoNewPrivs is set: setuid programs cannot raise privileges",
                             command)
    return probe.Outcome("fail", "NoNewPrivs is not set: the build may gain privileges through "
                         "setuid or file-capability programs", command)


def check_nested_userns(build: Build) -> probe.Outcome:
    return probe.judge_nested_userns(probe.run(probe.nested_userns_command()))


def token_files(deadline: float) -> tuple:
    """(token files found, whether the walk finished): known paths, then the visible tree."""
    found = [path for path in TOKEN_PATHS if os.path.exists(path)]
    for top, dirs, files in os.walk("/", onerror=lambda _: None):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SEARCH_SKIP]
        if time.monotonic() > deadline:
            return found, False
        parts = top.split(os.sep)
        if any(name in part for part in parts for name in TOKEN_DIR_NAMES) and "token" in files:
            path = os.path.join(top, "token")
            if path not in found:
                found.append(path)
    return found, True


def check_token(build: Build) -> probe.Outcome:
    found, finished = token_files(time.monotonic() + TOKEN_SEARCH_SECONDS)
    command = ["read", *TOKEN_PATHS, "/**/serviceaccount/token"]
    if found:
        return probe.Outcome("fail", "a Kubernetes service-account token is visible to the build: "
                             + ", ".join(found), command)
    if not finished:
        return probe.Outcome("pass", f"no service-account token at {TOKEN_PATHS[0]}; the search of "
                             f"the whole tree stopped after {TOKEN_SEARCH_SECONDS:.0f} s", command,
                             warning="the token search did not finish")
    return probe.Outcome("pass", "no Kubernetes service-account token anywhere the build can see",
                         command)


def check_metadata(build: Build) -> probe.Outcome:
    """Reported, not failed: whether it answers depends on the CNI and the cloud."""
    url = build.metadata_url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    command = ["connect", url]
    try:
        with opener.open(url, timeout=NETWORK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return probe.Outcome("pass", f"the cloud metadata address ({url}) does not answer: "
                             f"{getattr(exc, 'reason', exc)}", command)
    return probe.Outcome("pass", f"the cloud metadata address ({url}) answers (HTTP {status})",
                         command, warning=f"builds reach the cloud metadata service at {url}: "
                         "block 169.254.169.254 for the executor pods (a NetworkPolicy)")


def api_server() -> tuple:
    """(host, port, how it was found), or (None, None, why not)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host:
        return host, int(os.environ.get("KUBERNETES_SERVICE_PORT") or 443), "KUBERNETES_SERVICE_HOST"
    try:
        socket.getaddrinfo(API_SERVER_NAME, 443)
    except OSError:
        return None, None, f"KUBERNETES_SERVICE_HOST is unset and {API_SERVER_NAME} does not resolve"
    return API_SERVER_NAME, 443, "DNS"


def check_api_server(build: Build) -> probe.Outcome:
    """Reported, not failed: reachability depends on the CNI; without a token it answers 401/403."""
    host, port, how = api_server()
    if host is None:
        return probe.Outcome("pass", f"no Kubernetes API server address: {how}", ["read", "env"])
    command = ["connect", f"https://{host}:{port}/version"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only whether it answers, nothing is sent
    connection = http.client.HTTPSConnection(host, port, timeout=NETWORK_TIMEOUT, context=context)
    try:
        connection.request("GET", "/version")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return probe.Outcome("pass", f"the API server {host}:{port} ({how}) does not answer: {exc}",
                             command)
    finally:
        connection.close()
    return probe.Outcome("pass", f"the API server {host}:{port} ({how}) answers (HTTP {status})",
                         command, warning=f"builds reach the Kubernetes API server at {host}:{port}: "
                         "block it for the executor pods (a NetworkPolicy)")


# (id, title, ids that must pass first, check). The order is the report's order.
CHECKS = (
    ("build.context", "the job runs as an untrusted playbook", (), check_context),
    ("build.processes", "the build sees only its own processes", (), check_processes),
    ("build.proc", "/proc is the build's own", (), check_proc),
    ("build.uid-map", "the uid map is the one bwrap wrote", (), check_uid_map),
    ("build.zuul-conf", "zuul.conf is out of the build's reach", (), check_zuul_conf),
    ("build.ssh-key", "the executor's SSH private key is out of reach", (), check_ssh_key),
    ("build.tls-key", "the ZooKeeper TLS key is out of reach", (), check_tls_key),
    ("build.other-builds", "other builds' dirs are out of reach", (), check_other_builds),
    ("build.git-cache", "the executor's git cache is read-only at most", (), check_git_cache),
    ("build.command-socket", "the executor's command socket is out of reach", (),
     check_command_socket),
    ("build.writes", "writes outside the build's own dirs fail", (), check_writes),
    ("build.capabilities", "the build holds no capability (SETFCAP at most as root)", (),
     check_capabilities),
    ("build.seccomp", "a seccomp filter confines the build", (), check_seccomp),
    ("build.no-new-privs", "the build cannot gain privileges (NoNewPrivs)", (),
     check_no_new_privs),
    ("build.nested-userns", "a nested user namespace is refused", (), check_nested_userns),
    ("build.sa-token", "no Kubernetes service-account token is visible", (), check_token),
    ("build.metadata", "whether the cloud metadata address answers (reported)", (),
     check_metadata),
    ("build.api-server", "whether the Kubernetes API server answers (reported)", (),
     check_api_server),
)


def parse_args(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check a Zuul build's sandbox from inside.")
    parser.add_argument("--work-dir", required=True, help="zuul.executor.work_root")
    parser.add_argument("--playbook-dir", help="playbook_dir, to tell trusted from untrusted")
    parser.add_argument("--build", help="zuul.build (default: the job dir's name)")
    parser.add_argument("--job", default="zuul-k8s-selftest", help="zuul.job")
    parser.add_argument("--executor", default="", help="zuul.executor.hostname")
    parser.add_argument("--zuul-conf", default="/etc/zuul/zuul.conf")
    parser.add_argument("--ssh-key", default="/var/lib/zuul/.ssh/id_rsa")
    parser.add_argument("--tls-key", default="/tls/client/tls.key")
    parser.add_argument("--state-dir", default="/var/lib/zuul")
    parser.add_argument("--git-dir", help="default: STATE_DIR/executor-git (Zuul's default)")
    parser.add_argument("--command-socket", help="default: STATE_DIR/executor.socket")
    parser.add_argument("--metadata-url", default=METADATA_URL)
    parser.add_argument("--output", help="write the zuul_return data here (JSON)")
    parser.add_argument("--log-copy", help="also write the bare report here (for the logs)")
    return parser.parse_args(argv)


def zuul_return_data(report: dict, url: str) -> dict:
    """zuul_return data: the report as an artifact's metadata, which zuul-web's build API returns."""
    return {"zuul": {"artifacts": [{"name": ARTIFACT_NAME, "url": url,
                                    "metadata": {"report": report}}]}}


def main(argv: list | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("PATH"):
        os.environ["PATH"] = probe.FALLBACK_PATH
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    env = probe.gather_environment()
    environment_ms = round((time.monotonic() - started) * 1000, 1)
    build = Build(args, env)
    checks = probe.run_checks(build, CHECKS)
    report = probe.make_report("job", CHECKER_VERSION, started, started_at, environment_ms, env,
                               checks, build={
                                   "uuid": build.uuid, "job": args.job, "executor": args.executor,
                                   "context": build.context(), "work_dir": build.work_dir,
                                   "paths": build.paths})
    for check in checks:
        print("{:<22} {:<5} {}".format(check["id"], check["status"], check["message"]))
    if args.log_copy:
        with open(args.log_copy, "w") as handle:
            json.dump(report, handle, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(zuul_return_data(report, os.path.basename(args.log_copy or REPORT_FILE)),
                      handle)
    else:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

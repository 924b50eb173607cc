"""zuul.conf against the executor pod it runs in: one more source of findings.

The kit never renders zuul.conf (it holds credentials), but the pod and
zuul.conf must agree: the probes need `prometheus_port`, builds need the SSH
key where `private_key_file` points, every file zuul.conf names must be in a
mount the process can read, and state_dir, job_dir and git_dir belong on one
writable volume. Everything about the pod is read from the pod spec, so the
check holds for any deployer's manifests and for mounts added later. What
Zuul reads and its defaults are from Zuul 14.3.0's source (cited per table).

A finding prints key names and, for keys that name absolute paths, ports or
the metrics address, their values; no other value of zuul.conf is ever shown
(passwords, tokens, dburi), not even in a mistake (a key pasted as a path).
"""

from __future__ import annotations

import configparser
import difflib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zuul_k8s import isolation
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.podaccess import Identity, Place, PodView
from zuul_k8s.workloads import as_dict, as_list, as_str, pod_template
from zuul_k8s.zuulconf import ENV_PREFIX, Lookup, ZuulConf, lookup, syntax_problem

SOURCE = "zuulconf"
PLACEHOLDER = "CHANGE-ME"  # what the starter zuul.conf (zuulconf_starter) asks the user to replace


@dataclass(frozen=True)
class PathKey:
    """A zuul.conf key that names a path the executor uses."""

    section: str  # a section name, or `connection:DRIVER` for a connection of that driver
    key: str
    use: str  # file | ssh-key | dir | socket | ro-paths | rw-paths
    why: str  # what Zuul does with it, for messages
    default: str | None = None  # applied when unset (Zuul's default); None: unset means unused
    expands_home: bool = True  # Zuul applies os.path.expanduser


# Sources: zuul/executor/server.py (AnsibleJob.__init__, ExecutorServer.__init__),
# zuul/cmd/executor.py (job_dir, log_config), zuul/merger/server.py (git_dir), zuul/zk/__init__.py,
# zuul/lib/tracing.py, the drivers' connection classes (gerrit, github, pagure), all Zuul 14.3.0.
PATH_KEYS: tuple[PathKey, ...] = (
    PathKey("executor", "private_key_file", "ssh-key", "every build runs ssh-add on it", "~/.ssh/id_rsa"),
    PathKey("executor", "log_config", "file", "the executor reads it at start"),
    PathKey("executor", "variables", "file", "every build reads it", expands_home=False),
    PathKey("executor", "winrm_cert_key_file", "file", "Windows builds use it"),
    PathKey("executor", "winrm_cert_pem_file", "file", "Windows builds use it"),
    PathKey("executor", "trusted_ro_paths", "ro-paths", "bwrap binds them into trusted builds", expands_home=False),
    PathKey("executor", "untrusted_ro_paths", "ro-paths", "bwrap binds them into untrusted builds",
            expands_home=False),
    PathKey("executor", "trusted_rw_paths", "rw-paths", "bwrap binds them writable into trusted builds",
            expands_home=False),
    PathKey("executor", "untrusted_rw_paths", "rw-paths", "bwrap binds them writable into untrusted builds",
            expands_home=False),
    PathKey("executor", "state_dir", "dir", "Zuul keeps its Ansible installs there and its disk "
            "governor measures free space there", "/var/lib/zuul"),
    PathKey("executor", "job_dir", "dir", "every build's workspace is made there", "/var/lib/zuul/builds"),
    PathKey("executor", "git_dir", "dir", "the executor's git cache lives there", "/var/lib/zuul/executor-git",
            expands_home=False),
    PathKey("executor", "command_socket", "socket", "`zuul-executor graceful` and the pod's stop "
            "reach the executor there", "/var/lib/zuul/executor.socket", expands_home=False),
    PathKey("zookeeper", "tls_cert", "file", "the executor connects to ZooKeeper with it", expands_home=False),
    PathKey("zookeeper", "tls_key", "file", "the executor connects to ZooKeeper with it", expands_home=False),
    PathKey("zookeeper", "tls_ca", "file", "the executor checks ZooKeeper's certificate with it",
            expands_home=False),
    PathKey("tracing", "tls_cert", "file", "tracing uses it", expands_home=False),
    PathKey("tracing", "tls_key", "file", "tracing uses it", expands_home=False),
    PathKey("tracing", "tls_ca", "file", "tracing uses it", expands_home=False),
    PathKey("tracing", "certificate_file", "file", "tracing uses it", expands_home=False),
    PathKey("connection:gerrit", "sshkey", "ssh-key", "git fetches over SSH with it", expands_home=False),
    PathKey("connection:github", "sshkey", "ssh-key", "git fetches over SSH with it", expands_home=False),
    PathKey("connection:github", "app_key", "file", "the executor authenticates as the GitHub app with it",
            expands_home=False),
    PathKey("connection:pagure", "sshkey", "ssh-key", "git fetches over SSH with it", expands_home=False),
)
STATE_KEYS = ("state_dir", "job_dir", "git_dir")  # one filesystem: workspaces hard-link the git cache

# Keys without which the executor does not start (zuul/zk/__init__.py fromConfig,
# ExecutorServer._get_key_store_password).
REQUIRED: tuple[tuple[str, str, str], ...] = (
    ("zookeeper", "hosts", "the executor cannot reach ZooKeeper"),
    ("zookeeper", "tls_cert", "Zuul refuses ZooKeeper without TLS"),
    ("zookeeper", "tls_key", "Zuul refuses ZooKeeper without TLS"),
    ("zookeeper", "tls_ca", "Zuul refuses ZooKeeper without TLS"),
    ("keystore", "password", "the executor cannot decrypt the project secrets it hands to jobs"),
)

# [executor] keys Zuul 14.3.0 reads (doc/source/configuration.rst, Executor, and the
# executor's get_default calls): anything else is a typo Zuul silently ignores.
EXECUTOR_KEYS = frozenset((
    "command_socket", "finger_port", "state_dir", "git_dir", "job_dir", "log_config", "pidfile",
    "private_key_file", "default_username", "winrm_cert_key_file", "winrm_cert_pem_file",
    "winrm_operation_timeout_sec", "winrm_read_timeout_sec", "variables", "manage_ansible", "ansible_root",
    "ansible_setup_timeout", "disk_limit_per_job", "trusted_ro_paths", "trusted_rw_paths",
    "untrusted_ro_paths", "untrusted_rw_paths", "load_multiplier", "max_starting_builds", "min_avail_hdd",
    "min_avail_inodes", "min_avail_mem", "output_max_bytes", "hostname", "paused_on_start", "zone",
    "allow_unzoned", "merge_jobs", "sigterm_method", "prometheus_port", "prometheus_addr", "user",
    "cgroup_memory_limit",
))
DEFAULT_FINGER_PORT = 7900  # zuul/executor/server.py DEFAULT_FINGER_PORT
HEALTH_PATH = "/health/"  # zuul/lib/monitoring.py serves /health/{live,ready,status}
LOOPBACK = ("127.", "localhost", "::1")
CONNECTION = re.compile(r"""^connection (['"]?)(.*)(\1)$""", re.I)  # zuul/lib/connections.py
# Sections the executor reads whole (configparser interpolates every key of them):
# connections (`dict(config.items(...))` for each, zuul/lib/connections.py), ansible callbacks.
WHOLE_SECTIONS = re.compile(r"""^(connection|ansible_callback) .*$|^gerrit$""", re.I)
# Sections whose keys the executor reads one by one.
READ_SECTIONS = ("executor", "merger", "zookeeper", "keystore", "statsd", "tracing")


@dataclass
class Check:
    """One zuul.conf against one executor pod: the facts each rule reads."""

    conf: ZuulConf
    obj: dict[str, Any]
    pod: PodView
    parser: configparser.ConfigParser
    defined_env: set[str]
    who: Identity
    out: list[Finding]

    def finding(self, severity: Severity, rule: str, section: str, key: str, message: str, fix: str) -> None:
        meta = as_dict(self.obj.get("metadata"))
        self.out.append(Finding(severity, SOURCE, rule, str(self.obj.get("kind")),
                                as_str(meta.get("name")) or "(unnamed)", f"{section}.{key}", message, fix,
                                file=self.conf.file))

    def get(self, section: str, key: str) -> Lookup:
        return lookup(self.parser, section, key, self.defined_env)

    @property
    def workload(self) -> str:
        return f"{self.obj.get('kind')}/{as_str(as_dict(self.obj.get('metadata')).get('name'))}"


def _ports(check: Check) -> None:
    """prometheus_port must be the probes' port; finger_port the container's finger port."""
    container = check.pod.container
    named = {as_str(as_dict(p).get("name")): as_dict(p).get("containerPort") for p in as_list(container.get("ports"))}
    probe_ports = set()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = as_dict(as_dict(container.get(probe)).get("httpGet"))
        path, port = as_str(http.get("path")), http.get("port")
        if path and path.startswith(HEALTH_PATH):
            port = named.get(port) if isinstance(port, str) else port
            if isinstance(port, int):
                probe_ports.add(port)
    value = check.get("executor", "prometheus_port")
    if probe_ports and value.problem is None:
        wanted = min(probe_ports)
        if value.text is None:
            check.finding(Severity.ERROR, "prometheusPort", "executor", "prometheus_port",
                          f"not set: Zuul serves /health/* only when it is, so the probes of {check.workload} "
                          f"on port {wanted} fail and the liveness probe restarts the executor",
                          f"add `prometheus_port = {wanted}` to [executor]")
        elif _as_int(value.text) != wanted:
            shown = _shown_int(value)
            check.finding(Severity.ERROR, "prometheusPort", "executor", "prometheus_port",
                          f"{shown}, but the probes of {check.workload} call port {wanted}: they fail and the "
                          "liveness probe restarts the executor",
                          f"set `prometheus_port = {wanted}` (or ports.prometheus in the kit's config)")
    addr = check.get("executor", "prometheus_addr")
    if probe_ports and addr.text and addr.known and addr.text.startswith(LOOPBACK):
        check.finding(Severity.ERROR, "prometheusPort", "executor", "prometheus_addr",
                      f"{addr.text} is reachable only inside the pod: the kubelet's probes fail",
                      "remove prometheus_addr (Zuul listens on 0.0.0.0)")
    finger = named.get("finger")
    value = check.get("executor", "finger_port")
    if isinstance(finger, int) and value.problem is None:
        port = DEFAULT_FINGER_PORT if value.text is None else _as_int(value.text)
        if port != finger:
            now = (f"unset, so Zuul's default {DEFAULT_FINGER_PORT}" if value.text is None
                   else _shown_int(value))
            check.finding(Severity.ERROR, "fingerPort", "executor", "finger_port",
                          f"{now}, but {check.workload} exposes log streaming on port {finger}: "
                          "zuul-web's live logs fail",
                          f"set `finger_port = {finger}` (or ports.finger in the kit's config)")


def _as_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _shown_int(value: Lookup) -> str:
    """A port as zuul.conf gives it: the number, or that it is none (the text is not shown)."""
    number = _as_int(value.text)
    if number is not None:
        return f"is {number}"
    hint = " (a `#` after a value is part of the value in zuul.conf)" if value.text and "#" in value.text else ""
    return f"is not a whole number{hint}"


def _hostname(check: Check) -> None:
    if "zuul_executor_hostname" in check.defined_env and check.get("executor", "hostname").text is None:
        check.finding(Severity.WARNING, "hostname", "executor", "hostname",
                      "not set: the executor registers the pod's own host name, which zuul-web "
                      f"cannot resolve, so live logs fail; {check.workload} sets ZUUL_EXECUTOR_HOSTNAME "
                      "for it", "add `hostname = %(ZUUL_EXECUTOR_HOSTNAME)s` to [executor]")


def _required(check: Check) -> None:
    for section, key, why in REQUIRED:
        value = check.get(section, key)
        if value.problem is None and not value.text:
            check.finding(Severity.ERROR, "required", section, key, f"not set: {why}; the executor does not start",
                          f"set {key} in [{section}] (the same as the scheduler's)")


def _placeholders(check: Check) -> None:
    for section in check.conf.sections():
        for key in check.conf.options(section):
            if PLACEHOLDER in (check.conf.raw(section, key) or ""):
                check.finding(Severity.ERROR, "placeholder", section, key,
                              f"still holds the starter's {PLACEHOLDER}", "put your value there")


def _interpolation(check: Check) -> None:
    """Every value the executor reads must interpolate; elsewhere only the syntax is judged."""
    for section in check.conf.sections():
        read = section in READ_SECTIONS or bool(WHOLE_SECTIONS.match(section))
        for key in check.conf.options(section):
            if read:
                value = check.get(section, key)
                if value.missing_env:
                    envfrom = check.pod.may_have_more_env()
                    check.finding(Severity.WARNING if envfrom else Severity.ERROR, "interpolation", section, key,
                                  value.problem.replace("does not set", "does not list (its envFrom may set it)")
                                  if envfrom and value.problem else str(value.problem),
                                  f"set {value.missing_env} in the executor container's env (`env` in the kit's "
                                  "config, from a Secret for a password)")
                    continue
                problem = value.problem
            else:
                problem = syntax_problem(check.conf.raw(section, key) or "")
            if problem:
                check.finding(Severity.ERROR, "interpolation", section, key, problem,
                              "write a literal % as %%")


def _unknown_keys(check: Check) -> None:
    for key in check.conf.options("executor"):
        if key not in EXECUTOR_KEYS:
            close = difflib.get_close_matches(key, sorted(EXECUTOR_KEYS), n=1)
            hint = f"did you mean {close[0]}?" if close else "see Zuul's configuration reference"
            check.finding(Severity.WARNING, "unknownKey", "executor", key,
                          f"Zuul 14 reads no such [executor] key and ignores it; {hint}",
                          f"rename it to {close[0]}" if close else "remove it")


def _keys_in_use(check: Check) -> list[tuple[PathKey, str]]:
    """(path key, section) for every path key of the table that applies to this zuul.conf."""
    out = []
    drivers: dict[str, list[str]] = {}
    for section in check.conf.sections():
        if CONNECTION.match(section) or section.lower() == "gerrit":
            driver = "gerrit" if section.lower() == "gerrit" else (check.get(section, "driver").text or "")
            drivers.setdefault(f"connection:{driver}", []).append(section)
    for spec in PATH_KEYS:
        sections = drivers.get(spec.section, []) if spec.section.startswith("connection:") else [spec.section]
        out += [(spec, section) for section in sections]
    return out


def _path(check: Check, spec: PathKey, section: str) -> tuple[str | None, bool]:
    """(the path Zuul uses, whether zuul.conf sets it), None when unknown or broken (said)."""
    value = check.get(section, spec.key)
    if value.problem:
        return None, True  # the interpolation rule reports it
    text = value.text if value.text is not None else spec.default
    if not text:
        return None, value.text is not None
    if value.unknown_env:
        check.finding(Severity.WARNING, "runtimeEnv", section, spec.key,
                      f"depends on {', '.join(value.unknown_env)}, whose value the pod sets at run time: "
                      "the path is not checked", "use a literal path")
        return None, True
    if text.startswith("~"):
        if not spec.expands_home:
            check.finding(Severity.ERROR, "relativePath", section, spec.key,
                          "starts with ~, which Zuul does not expand for this key", "give the absolute path")
            return None, True
        if check.who.home is None:
            where = f"Zuul's default {text}" if value.text is None else "starts with ~ and"
            check.finding(Severity.WARNING, "home", section, spec.key,
                          f"{where} depends on HOME, which the pod spec does not fix for uid "
                          f"{check.who.uid}: not checked", f"set {spec.key} to an absolute path")
            return None, value.text is not None
        text = check.who.home.rstrip("/") + text[1:]
    if not looks_like_path(text):
        check.finding(Severity.ERROR, "relativePath", section, spec.key,
                      "is not an absolute path (the value is not shown: it may be a secret put in the "
                      "wrong key); the executor resolves a relative path against its working directory",
                      "give the absolute path of the file in the pod")
        return None, True
    return posixpath.normpath(text), value.text is not None


def looks_like_path(text: str) -> bool:
    """Only absolute, one-line, space-free values are shown: a key or password pasted into a
    path key must not end up in a finding."""
    return text.startswith("/") and len(text) < 1024 and not any(c.isspace() for c in text)


def _described(path: str, is_set: bool) -> str:
    return path if is_set else f"unset, so Zuul's default {path}"


def _files(check: Check) -> None:
    """Every file zuul.conf names is in a mount that puts it there, readable, an SSH key private."""
    for spec, section in _keys_in_use(check):
        if spec.use not in ("file", "ssh-key", "ro-paths", "rw-paths"):
            continue
        if spec.use.endswith("paths"):
            value = check.get(section, spec.key)
            if not value.known or not value.text:
                continue
            for path in value.text.split(":"):
                if path and looks_like_path(path):
                    _one_path(check, spec, section, posixpath.normpath(path), True)
                elif path:
                    check.finding(Severity.ERROR, "relativePath", section, spec.key,
                                  "holds an entry that is not an absolute path (not shown)",
                                  "give absolute paths separated by `:`")
            continue
        path, is_set = _path(check, spec, section)
        if path is not None:
            _one_path(check, spec, section, path, is_set)


def _one_path(check: Check, spec: PathKey, section: str, path: str, is_set: bool) -> None:
    place = check.pod.place(path)
    shown = _described(path, is_set)
    mounts = ", ".join(sorted(m.path for m in check.pod.mounts)) or "none"
    if place.mount is None:
        image_may = spec.use.endswith("paths")
        check.finding(Severity.WARNING if image_may else Severity.ERROR, "notMounted", section, spec.key,
                      f"{shown} is in no volume mount of {check.workload} ({spec.why}; the container "
                      f"mounts {mounts})",
                      "point it at a mounted file, or mount a Secret or ConfigMap there" +
                      (" (or ignore this if the image carries it)" if image_may else ""))
        return
    if spec.use == "rw-paths":
        if not place.writable:
            check.finding(Severity.ERROR, "notWritable", section, spec.key,
                          f"{path} is on {place.where}, which is read-only ({spec.why})",
                          "point it at a writable volume")
        return
    if place.exists is False:
        empty = place.mount.source in ("emptyDir", "ephemeral") and path != place.mount.path
        check.finding(Severity.ERROR, "emptyVolume" if empty else "notInVolume",
                      section, spec.key,
                      f"{shown} is on {place.where}" + (", which starts empty and nothing the pod runs "
                                                        "fills" if empty else "") + f" ({spec.why})",
                      "point it at a file a Secret or ConfigMap mount provides" +
                      ("" if empty else f" (the container mounts {mounts})"))
        return
    readable = place.readable_by(check.who)
    if readable is False:
        check.finding(Severity.ERROR, "unreadable", section, spec.key,
                      f"{path} ({place.where}) has mode {place.mode:04o}, owner {place.owner}, group "
                      f"{place.group}: the executor (uid {check.who.uid}) cannot read it ({spec.why})",
                      "give the volume a defaultMode (or the item a mode) the executor's uid or fsGroup may read")
    elif spec.use == "ssh-key" and place.open_to_others(check.who):
        check.finding(Severity.ERROR, "sshKeyMode", section, spec.key,
                      f"{path} ({place.where}) has mode {place.mode:04o} and belongs to the executor's "
                      f"uid {check.who.uid}: OpenSSH refuses a private key others may read "
                      f"(\"Permissions 0{place.mode:03o} ... are too open\"): {spec.why}, and that fails",
                      "run the executor as uid 10001 (user.uid), which reads the key through fsGroup; "
                      "as root the key must be 0400 without an fsGroup on it")


def _state(check: Check) -> None:
    """state_dir, job_dir and git_dir on one writable volume, the socket's directory writable."""
    specs = {spec.key: spec for spec in PATH_KEYS if spec.section == "executor"}
    places: dict[str, tuple[Place, str, bool]] = {}
    for key in (*STATE_KEYS, "command_socket"):
        path, is_set = _path(check, specs[key], "executor")
        if path is None:
            continue
        target = posixpath.dirname(path) if key == "command_socket" else path
        place = check.pod.place(target)
        shown = _described(path, is_set)
        if not place.writable:
            check.finding(Severity.ERROR, "notWritable", "executor", key,
                          f"{shown} is on {place.where}, which the executor cannot write "
                          f"({specs[key].why})",
                          "use a path on the state volume (Zuul's defaults under /var/lib/zuul are)")
            continue
        places[key] = (place, shown, is_set)
    if "state_dir" not in places:
        return
    state, _, _ = places["state_dir"]
    if state.mount is None:
        check.finding(Severity.ERROR, "stateVolume", "executor", "state_dir",
                      f"{places['state_dir'][1]} is on the container's own filesystem: lost on restart "
                      "and invisible to Zuul's disk governor",
                      "mount the state volume there, or point state_dir at it")
        return
    for key in ("job_dir", "git_dir"):
        if key not in places:
            continue
        place, shown, is_set = places[key]
        if place.mount is None or place.mount.path != state.mount.path:
            where = "the container's own filesystem" if place.mount is None else place.where
            check.finding(Severity.ERROR, "stateVolume", "executor", key,
                          f"{shown} is on {where}, not on the state volume {state.mount.volume} "
                          f"({state.mount.path}) with state_dir: git cannot hard-link the cache into "
                          "workspaces across file systems, and the disk governor watches the wrong disk",
                          f"keep {key} under {state.mount.path}")
        elif key == "job_dir" and is_set and place.path != place.mount.path:
            check.finding(Severity.ERROR, "jobDir", "executor", "job_dir",
                          f"{place.path} must exist when the executor starts (Zuul exits with "
                          "\"Invalid job_dir\" otherwise), and a fresh volume is empty",
                          "remove job_dir: Zuul creates its default /var/lib/zuul/builds itself")


# The rules, in the order their findings are listed.
RULES: tuple[Callable[[Check], None], ...] = (
    _ports, _hostname, _required, _placeholders, _interpolation, _unknown_keys, _files, _state,
)


def executors(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], PodView]]:
    """(object, view of its executor container) for every pod template that runs one."""
    out = []
    for obj in objects:
        pod = pod_template(obj)
        if pod is None:
            continue
        claims = tuple(as_str(as_dict(as_dict(t).get("metadata")).get("name")) or ""
                       for t in as_list(as_dict(obj.get("spec")).get("volumeClaimTemplates")))
        for path, container in pod.containers():
            if "containers" in path and isolation.is_executor_container(container):  # not an init container
                out.append((obj, PodView(pod.spec, container, claims)))
    return out


def findings(conf: ZuulConf, objects: list[dict[str, Any]]) -> list[Finding]:
    """What is wrong with `conf` for each executor pod in `objects`."""
    out: list[Finding] = []
    for obj, view in executors(objects):
        env = view.env()
        parser = conf.parser(env)
        defined = {k.lower() for k in env if k.startswith(ENV_PREFIX)}
        user = lookup(parser, "executor", "user", defined)
        who = view.identity(user.text if user.known and user.text else None)
        check = Check(conf, obj, view, parser, defined, who, out)
        for rule in RULES:
            rule(check)
    return out

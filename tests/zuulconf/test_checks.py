"""Each zuul.conf check with a zuul.conf that passes it and one that fails it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.zuulconf.helpers import Obj, check, container, fitting, objects, patched, pod_spec, rules, without
from zuul_k8s.findings import Severity

DEFAULT = objects()


@pytest.mark.parametrize("sections", [
    {},
    {"workload": {"kind": "StatefulSet"}, "state": {"type": "pvc"}},
    {"user": {"uid": 0, "gid": 0, "fsGroup": 0}},
    {"ports": {"finger": 7901, "prometheus": 9191}},
], ids=["default", "statefulset-pvc", "root", "other-ports"])
def test_a_zuul_conf_written_for_the_pod_has_no_findings(sections: dict[str, Any]) -> None:
    objs = objects(**sections)
    assert check(fitting(objs), objs) == []


def test_zuuls_defaults_fit_the_kits_pod() -> None:
    """private_key_file, state_dir, job_dir, git_dir, command_socket and finger_port unset."""
    text = fitting(DEFAULT)
    for key in ("private_key_file", "state_dir", "finger_port"):
        text = without(text, key)
    assert check(text, DEFAULT) == []


# --- ports -----------------------------------------------------------------------------------

def test_prometheus_port_unset_is_an_error_naming_the_probe_port() -> None:
    found = check(without(fitting(DEFAULT), "prometheus_port"), DEFAULT)
    assert rules(found) == {("error", "prometheusPort", "executor.prometheus_port")}
    assert "prometheus_port = 9091" in found[0].fix
    assert "liveness probe restarts the executor" in found[0].message


def test_prometheus_port_other_than_the_probes_port() -> None:
    text = fitting(DEFAULT).replace("prometheus_port=9091", "prometheus_port=9092")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "prometheusPort", "executor.prometheus_port")}
    assert "is 9092, but the probes of Deployment/zuul-executor call port 9091" in found[0].message


def test_prometheus_port_with_an_inline_comment_is_not_a_number() -> None:
    text = fitting(DEFAULT).replace("prometheus_port=9091", "prometheus_port=9091  # metrics")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "prometheusPort", "executor.prometheus_port")}
    assert "not a whole number" in found[0].message and "`#`" in found[0].message


def test_prometheus_port_needed_only_when_probes_call_health() -> None:
    def no_probes(spec: Obj, c: Obj) -> None:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            c.pop(probe, None)
    objs = patched(DEFAULT, no_probes)
    assert check(without(fitting(DEFAULT), "prometheus_port"), objs) == []


def test_prometheus_addr_on_loopback_is_unreachable_for_the_kubelet() -> None:
    text = fitting(DEFAULT, executor="prometheus_addr=127.0.0.1")
    assert rules(check(text, DEFAULT)) == {("error", "prometheusPort", "executor.prometheus_addr")}
    assert check(fitting(DEFAULT, executor="prometheus_addr=0.0.0.0"), DEFAULT) == []


def test_finger_port_default_must_match_the_rendered_finger_port() -> None:
    objs = objects(ports={"finger": 7901})
    found = check(without(fitting(objs), "finger_port"), objs)
    assert rules(found) == {("error", "fingerPort", "executor.finger_port")}
    assert "unset, so Zuul's default 7900" in found[0].message and "finger_port = 7901" in found[0].fix
    wrong = fitting(DEFAULT).replace("finger_port=7900", "finger_port=79")
    assert rules(check(wrong, DEFAULT)) == {("error", "fingerPort", "executor.finger_port")}


def test_hostname_unset_warns_when_the_pod_offers_zuul_executor_hostname() -> None:
    text = fitting(DEFAULT).replace("hostname=%(ZUUL_EXECUTOR_HOSTNAME)s\n", "")
    assert rules(check(text, DEFAULT)) == {("warning", "hostname", "executor.hostname")}


# --- required keys -------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "path"), [
    ("hosts", "zookeeper.hosts"), ("tls_ca", "zookeeper.tls_ca"), ("tls_cert", "zookeeper.tls_cert"),
    ("tls_key", "zookeeper.tls_key"), ("password", "keystore.password"),
])
def test_keys_the_executor_cannot_start_without(key: str, path: str) -> None:
    found = check(without(fitting(DEFAULT), key), DEFAULT)
    assert rules(found) == {("error", "required", path)}


# --- files ---------------------------------------------------------------------------------

def test_private_key_file_where_the_old_pod_mounted_the_key_is_caught() -> None:
    """The key used to be mounted at /var/lib/zuul/ssh/id_rsa: pointing there now is wrong."""
    text = fitting(DEFAULT).replace("private_key_file=/var/lib/zuul/.ssh/id_rsa",
                                    "private_key_file=/var/lib/zuul/ssh/id_rsa")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "emptyVolume", "executor.private_key_file")}
    assert "starts empty" in found[0].message and "ssh-add" in found[0].message


def test_default_private_key_file_with_the_key_mounted_elsewhere() -> None:
    """The issue's first pod: key at /var/lib/zuul/ssh, Zuul looking in ~/.ssh/id_rsa."""
    def old_mount(spec: Obj, c: Obj) -> None:
        next(m for m in c["volumeMounts"] if m["name"] == "ssh-key")["mountPath"] = "/var/lib/zuul/ssh"
    objs = patched(DEFAULT, old_mount)
    found = check(without(fitting(DEFAULT), "private_key_file"), objs)
    assert rules(found) == {("error", "emptyVolume", "executor.private_key_file")}
    assert "unset, so Zuul's default /var/lib/zuul/.ssh/id_rsa" in found[0].message


def test_home_decides_the_default_private_key_file() -> None:
    def home(value: str | None) -> Any:
        def change(spec: Obj, c: Obj) -> None:
            c["env"] = [e for e in c["env"] if e["name"] != "HOME"]
            if value is not None:
                c["env"].append({"name": "HOME", "value": value})
        return change
    text = without(fitting(DEFAULT), "private_key_file")
    assert check(text, patched(DEFAULT, home(None))) == []  # uid 10001: the image's /var/lib/zuul
    assert rules(check(text, patched(DEFAULT, home("/home/zuul")))) == {
        ("error", "notMounted", "executor.private_key_file")}

    def stranger(spec: Obj, c: Obj) -> None:
        home(None)(spec, c)
        spec["securityContext"]["runAsUser"] = 4242
    assert rules(check(text, patched(DEFAULT, stranger))) == {("warning", "home", "executor.private_key_file")}


def test_a_root_executor_refuses_a_group_readable_key() -> None:
    """uid 0 owns the Secret's files; an fsGroup adds g+r: OpenSSH says 'too open'."""
    def root_with_fs_group(spec: Obj, c: Obj) -> None:
        spec["securityContext"].update(runAsUser=0, fsGroup=10001)
        spec["securityContext"].pop("runAsNonRoot", None)
        next(v for v in spec["volumes"] if v["name"] == "ssh-key")["secret"]["defaultMode"] = 0o400
    found = check(fitting(DEFAULT), patched(DEFAULT, root_with_fs_group))
    assert rules(found) == {("error", "sshKeyMode", "executor.private_key_file")}
    assert "mode 0440" in found[0].message and "too open" in found[0].message

    def root_without_fs_group(spec: Obj, c: Obj) -> None:
        root_with_fs_group(spec, c)
        del spec["securityContext"]["fsGroup"]
    assert check(fitting(DEFAULT), patched(DEFAULT, root_without_fs_group)) == []


def test_a_file_the_executors_uid_cannot_read() -> None:
    def no_fs_group(spec: Obj, c: Obj) -> None:
        del spec["securityContext"]["fsGroup"]
    found = check(fitting(DEFAULT), patched(DEFAULT, no_fs_group))
    assert {f.rule for f in found} == {"unreadable"}
    assert {f.path for f in found} == {"executor.private_key_file", "zookeeper.tls_ca", "zookeeper.tls_cert",
                                       "zookeeper.tls_key"}
    assert "the executor (uid 10001) cannot read it" in found[0].message


def test_log_config_must_be_mounted_and_an_added_configmap_is_seen() -> None:
    text = fitting(DEFAULT, executor="log_config=/etc/zuul/logging/logging.yaml")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "notMounted", "executor.log_config")}
    assert "/etc/zuul/logging/logging.yaml is in no volume mount" in found[0].message

    def add_configmap(spec: Obj, c: Obj) -> None:
        spec["volumes"].append({"name": "logging", "configMap": {"name": "zuul-logging"}})
        c["volumeMounts"].append({"name": "logging", "mountPath": "/etc/zuul/logging", "readOnly": True})
    assert check(text, patched(DEFAULT, add_configmap)) == []


def test_the_kits_mounts_option_is_seen_without_telling_the_check() -> None:
    objs = objects(mounts=[{"configMap": "zuul-logging", "path": "/etc/zuul/logging"},
                           {"secret": "github-app", "key": "app.pem", "path": "/etc/zuul/github/app.pem"}])
    text = fitting(objs, executor="log_config=/etc/zuul/logging/logging.yaml",
                   extra='[connection "github"]\ndriver=github\napp_id=1\napp_key=/etc/zuul/github/app.pem\n')
    assert check(text, objs) == []
    moved = text.replace("app_key=/etc/zuul/github/app.pem", "app_key=/etc/zuul/github/key.pem")
    assert rules(check(moved, objs)) == {("error", "notMounted", 'connection "github".app_key')}


def test_items_decide_which_files_a_secret_mount_holds() -> None:
    text = fitting(DEFAULT).replace("private_key_file=/var/lib/zuul/.ssh/id_rsa",
                                    "private_key_file=/var/lib/zuul/.ssh/id_ed25519")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "notInVolume", "executor.private_key_file")}
    assert "puts no file id_ed25519 there" in found[0].message
    mount_point = fitting(DEFAULT).replace("private_key_file=/var/lib/zuul/.ssh/id_rsa",
                                           "private_key_file=/var/lib/zuul/.ssh")
    assert rules(check(mount_point, DEFAULT)) == {("error", "notInVolume", "executor.private_key_file")}


def test_a_subpath_mount_is_one_file() -> None:
    inside = fitting(DEFAULT, executor="variables=/etc/zuul/zuul.conf/vars.yaml")
    assert rules(check(inside, DEFAULT)) == {("error", "notMounted", "executor.variables")}  # a file has no children
    assert check(fitting(DEFAULT, executor="variables=/etc/zuul/zuul.conf"), DEFAULT) == []


def test_zookeeper_tls_files_outside_the_mounts() -> None:
    text = fitting(DEFAULT).replace("tls_ca=/tls/client/ca.crt", "tls_ca=/var/certs/ca.pem")
    assert rules(check(text, DEFAULT)) == {("error", "notMounted", "zookeeper.tls_ca")}


def test_connection_keys_by_driver() -> None:
    gerrit = '[connection "gerrit"]\ndriver=gerrit\nserver=review.example.org\nsshkey=/var/ssh/zuul\n'
    assert rules(check(fitting(DEFAULT, extra=gerrit), DEFAULT)) == {
        ("error", "notMounted", 'connection "gerrit".sshkey')}
    mounted = gerrit.replace("/var/ssh/zuul", "/var/lib/zuul/.ssh/id_rsa")
    assert check(fitting(DEFAULT, extra=mounted), DEFAULT) == []
    git = "[connection opendev]\ndriver=git\nbaseurl=https://opendev.org\nsshkey=/nowhere\n"
    assert check(fitting(DEFAULT, extra=git), DEFAULT) == []  # the git driver reads no sshkey


def test_rw_paths_need_a_writable_mount_and_ro_paths_may_come_from_the_image() -> None:
    rw = check(fitting(DEFAULT, executor="trusted_rw_paths=/var/lib/zuul/.ssh"), DEFAULT)
    assert rules(rw) == {("error", "notWritable", "executor.trusted_rw_paths")}
    assert check(fitting(DEFAULT, executor="trusted_rw_paths=/var/lib/zuul/logs"), DEFAULT) == []
    ro = check(fitting(DEFAULT, executor="untrusted_ro_paths=/usr/share/zuul"), DEFAULT)
    assert rules(ro) == {("warning", "notMounted", "executor.untrusted_ro_paths")}


def test_a_relative_path_is_reported_without_its_value() -> None:
    found = check(fitting(DEFAULT, executor="variables=site-vars.yaml"), DEFAULT)
    assert rules(found) == {("error", "relativePath", "executor.variables")}
    assert "site-vars.yaml" not in found[0].message + found[0].fix


# --- state ---------------------------------------------------------------------------------

def test_job_dir_off_the_state_volume_breaks_hard_links() -> None:
    found = check(fitting(DEFAULT, executor="job_dir=/tmp"), DEFAULT)
    assert rules(found) == {("error", "stateVolume", "executor.job_dir")}
    assert "hard-link" in found[0].message


def test_git_dir_on_a_read_only_root_filesystem() -> None:
    found = check(fitting(DEFAULT, executor="git_dir=/srv/git"), DEFAULT)
    assert rules(found) == {("error", "notWritable", "executor.git_dir")}

    def writable_root(spec: Obj, c: Obj) -> None:
        c["securityContext"].pop("readOnlyRootFilesystem", None)
    found = check(fitting(DEFAULT, executor="git_dir=/srv/git"), patched(DEFAULT, writable_root))
    assert rules(found) == {("error", "stateVolume", "executor.git_dir")}


def test_state_dir_must_be_a_volume() -> None:
    def writable_root(spec: Obj, c: Obj) -> None:
        c["securityContext"].pop("readOnlyRootFilesystem", None)
    text = fitting(DEFAULT).replace("state_dir=/var/lib/zuul", "state_dir=/srv/zuul")
    assert ("error", "stateVolume", "executor.state_dir") in rules(check(text, patched(DEFAULT, writable_root)))


def test_an_explicit_job_dir_must_exist_at_start() -> None:
    found = check(fitting(DEFAULT, executor="job_dir=/var/lib/zuul/jobs"), DEFAULT)
    assert rules(found) == {("error", "jobDir", "executor.job_dir")}
    assert "Invalid job_dir" in found[0].message


def test_command_socket_needs_a_writable_directory() -> None:
    found = check(fitting(DEFAULT, executor="command_socket=/etc/zuul/executor.socket"), DEFAULT)
    assert rules(found) == {("error", "notWritable", "executor.command_socket")}


def test_a_pvc_state_volume_of_a_statefulset_is_the_state_volume() -> None:
    objs = objects(workload={"kind": "StatefulSet"}, state={"type": "pvc"})
    assert check(fitting(objs, executor="git_dir=/var/lib/zuul/git"), objs) == []


# --- interpolation and keys ----------------------------------------------------------------

def test_interpolation_of_the_pods_zuul_variables() -> None:
    def env(spec: Obj, c: Obj) -> None:
        c["env"].append({"name": "ZUUL_KEYS", "value": "/var/lib/zuul/.ssh"})
    objs = patched(DEFAULT, env)
    text = fitting(objs).replace("private_key_file=/var/lib/zuul/.ssh/id_rsa",
                                 "private_key_file=%(ZUUL_KEYS)s/id_rsa")
    assert check(text, objs) == []
    assert check(text.replace("%(ZUUL_KEYS)s", "%(zuul_keys)s"), objs) == []  # names are case-insensitive
    wrong = text.replace("%(ZUUL_KEYS)s/id_rsa", "%(ZUUL_KEYS)s/id_dsa")
    found = check(wrong, objs)
    assert rules(found) == {("error", "notInVolume", "executor.private_key_file")}
    assert "/var/lib/zuul/.ssh/id_dsa" in found[0].message  # the interpolated path


def test_a_variable_the_pod_does_not_set() -> None:
    text = fitting(DEFAULT, extra="[connection gerrit]\ndriver=gerrit\npassword=%(ZUUL_GERRIT_PASSWORD)s\n")
    found = check(text, DEFAULT)
    assert rules(found) == {("error", "interpolation", "connection gerrit.password")}
    assert "ZUUL_GERRIT_PASSWORD" in found[0].message and "ZUUL_GERRIT_PASSWORD" in found[0].fix

    def env_from(spec: Obj, c: Obj) -> None:
        c["envFrom"] = [{"secretRef": {"name": "zuul-env"}}]
    assert rules(check(text, patched(DEFAULT, env_from))) == {("warning", "interpolation", "connection gerrit.password")}


def test_sections_the_executor_never_reads_may_use_the_schedulers_variables() -> None:
    text = fitting(DEFAULT, extra="[database]\ndburi=postgresql://zuul:%(ZUUL_DB_PASSWORD)s@db/zuul\n")
    assert check(text, DEFAULT) == []
    bad = fitting(DEFAULT, extra="[database]\ndburi=postgresql://zuul:50%@db/zuul\n")
    assert rules(check(bad, DEFAULT)) == {("error", "interpolation", "database.dburi")}


def test_a_lone_percent_sign_and_a_doubled_one() -> None:
    bad = check(fitting(DEFAULT, password="pass%word"), DEFAULT)
    assert rules(bad) == {("error", "interpolation", "keystore.password")}
    assert check(fitting(DEFAULT, password="pass%%word"), DEFAULT) == []


def test_a_value_the_pod_sets_at_run_time_is_not_checked_as_a_path() -> None:
    def env(spec: Obj, c: Obj) -> None:
        c["env"].append({"name": "ZUUL_KEYS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    objs = patched(DEFAULT, env)
    text = fitting(objs).replace("private_key_file=/var/lib/zuul/.ssh/id_rsa",
                                 "private_key_file=%(ZUUL_KEYS)s/id_rsa")
    found = check(text, objs)
    assert rules(found) == {("warning", "runtimeEnv", "executor.private_key_file")}


def test_references_to_options_of_the_same_section() -> None:
    text = fitting(DEFAULT, executor="base=/var/lib/zuul\ngit_dir=%(base)s/git")
    assert rules(check(text, DEFAULT)) == {("warning", "unknownKey", "executor.base")}
    dangling = fitting(DEFAULT, executor="git_dir=%(nothing)s/git")
    assert rules(check(dangling, DEFAULT)) == {("error", "interpolation", "executor.git_dir")}


def test_a_misspelt_executor_key_is_named_with_the_likely_one() -> None:
    text = without(fitting(DEFAULT), "prometheus_port") + "prometheus-port=9091\n"
    found = check(text, DEFAULT)
    assert ("warning", "unknownKey", "executor.prometheus-port") in rules(found)
    assert ("error", "prometheusPort", "executor.prometheus_port") in rules(found)
    assert "did you mean prometheus_port?" in next(f for f in found if f.rule == "unknownKey").message


def test_the_same_zuul_conf_is_judged_against_every_executor_workload() -> None:
    other = objects(workload={"name": "zuul-executor-b"}, ports={"prometheus": 9191})
    both = [*DEFAULT, *other]
    found = check(fitting(DEFAULT), both)
    assert [(f.kind, f.name, f.rule) for f in found] == [("Deployment", "zuul-executor-b", "prometheusPort")]


def test_findings_are_errors_or_warnings_only() -> None:
    text = fitting(DEFAULT, executor="job_dir=/tmp\nlog_config=/x.yaml\nfoo=1")
    assert {f.severity for f in check(text, DEFAULT)} <= {Severity.ERROR, Severity.WARNING}


def test_no_executor_no_findings() -> None:
    others = [o for o in DEFAULT if o["kind"] not in ("Deployment", "StatefulSet")]
    assert check("[executor]\n", others) == []
    assert pod_spec(DEFAULT) and container(DEFAULT)


def test_an_init_container_named_like_the_executor_is_not_judged() -> None:
    def init(spec: Obj, c: Obj) -> None:
        spec["initContainers"] = [{"name": "zuul-executor", "image": "busybox", "ports": [
            {"name": "finger", "containerPort": 1}]}]
    assert check(fitting(DEFAULT), patched(DEFAULT, init)) == []


def test_a_root_executor_dropping_to_zuul_reads_as_zuul() -> None:
    """[executor] user: Zuul's dropPrivs sets uid, gid, no supplementary groups and HOME of that user."""
    objs = objects(user={"uid": 0, "gid": 0, "fsGroup": 0})

    def no_home(spec: Obj, c: Obj) -> None:
        c["env"] = [e for e in c["env"] if e["name"] != "HOME"]
    text = without(fitting(objs), "private_key_file")
    assert rules(check(text, patched(objs, no_home))) == {("error", "notMounted", "executor.private_key_file")}
    dropped = check(text.replace("[executor]\n", "[executor]\nuser=zuul\n"), patched(objs, no_home))
    assert {(f.rule, f.path) for f in dropped} >= {("unreadable", "executor.private_key_file")}
    assert "the executor (uid 10001) cannot read it" in next(f.message for f in dropped if f.rule == "unreadable")

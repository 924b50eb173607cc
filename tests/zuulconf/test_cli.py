"""`--zuul-conf` on render, validate and apply: the findings, bad files, the note, no value shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.helpers import zuul_k8s
from tests.zuulconf.helpers import check, fitting, objects, without
from zuul_k8s import examples
from zuul_k8s.errors import UserError
from zuul_k8s.zuulconf import load

SECRET = "Planted-Zuul-Secret-4711"  # must never appear in any output
DEFAULT = objects()
UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    """A config file (apply needs -c) and an unreachable cluster next to it."""
    (tmp_path / "kc.yaml").write_text(UNREACHABLE_KUBECONFIG)
    path = tmp_path / "zuul-k8s.yaml"
    path.write_text(examples.CONFIG.read_text())
    return path


def commands(kit: Path, conf: Path) -> dict[str, list[str]]:
    manifests = kit.parent / "objects.yaml"
    if not manifests.exists():
        manifests.write_text(zuul_k8s("render", "-c", str(kit)).stdout)
    return {
        "render": ["render", "-c", str(kit), "--zuul-conf", str(conf)],
        "validate": ["validate", "-c", str(kit), "--zuul-conf", str(conf)],
        "validate-json": ["validate", "-c", str(kit), "--zuul-conf", str(conf), "-o", "json"],
        "validate-f": ["validate", "-f", str(manifests), "--zuul-conf", str(conf)],
        "apply": ["apply", "-c", str(kit), "--zuul-conf", str(conf), "--kubeconfig", str(kit.parent / "kc.yaml")],
    }


def test_the_findings_format_is_file_section_key(tmp_path: Path) -> None:
    conf = tmp_path / "executor.conf"
    conf.write_text(without(fitting(DEFAULT), "prometheus_port"))
    result = zuul_k8s("validate", "--zuul-conf", str(conf))
    assert result.returncode == 1
    first, fix = result.stdout.splitlines()[:2]
    assert first.startswith(f"error: {conf}:executor.prometheus_port: not set: Zuul serves /health/*")
    assert first.endswith("[zuulconf/prometheusPort]")
    assert fix == "  fix: add `prometheus_port = 9091` to [executor]"
    data = json.loads(zuul_k8s("validate", "--zuul-conf", str(conf), "-o", "json").stdout)
    assert data == [{"severity": "error", "source": "zuulconf", "rule": "prometheusPort", "kind": "Deployment",
                     "name": "zuul-executor", "path": "executor.prometheus_port", "message": data[0]["message"],
                     "fix": "add `prometheus_port = 9091` to [executor]", "file": str(conf)}]


def test_render_refuses_and_apply_touches_nothing_on_a_zuul_conf_error(kit: Path, tmp_path: Path) -> None:
    conf = tmp_path / "zuul.conf"
    conf.write_text(fitting(DEFAULT, executor="job_dir=/tmp"))
    out = tmp_path / "out"
    rendered = zuul_k8s("render", "-c", str(kit), "--zuul-conf", str(conf), "-o", str(out))
    assert rendered.returncode == 1 and not out.exists()
    assert f"{conf}:executor.job_dir:" in rendered.stderr
    applied = zuul_k8s(*commands(kit, conf)["apply"])
    assert applied.returncode == 1
    assert "refusing to touch the cluster" in applied.stderr
    assert "cannot reach" not in applied.stderr  # never connected


def test_a_fitting_zuul_conf_passes_every_command(kit: Path, tmp_path: Path) -> None:
    conf = tmp_path / "zuul.conf"
    conf.write_text(fitting(DEFAULT))
    for name, argv in commands(kit, conf).items():
        result = zuul_k8s(*argv)
        if name == "apply":  # validated, then the unreachable cluster
            assert result.returncode == 2 and "cannot reach the Kubernetes API" in result.stderr
        else:
            assert result.returncode == 0, (name, result.stderr)
        assert "zuulconf" not in result.stdout + result.stderr


def test_no_secret_value_ever_reaches_the_output(kit: Path, tmp_path: Path) -> None:
    """A password in every place zuul.conf may hold one, and mistakes around each."""
    extra = (
        f'[connection "gerrit"]\ndriver=gerrit\npassword={SECRET}%\nsshkey={SECRET}\n'
        f'[connection "github"]\ndriver=github\napp_key=-----BEGIN RSA {SECRET}\n api_token={SECRET}\n'
        f"[database]\ndburi=postgresql://zuul:{SECRET}@db/zuul\n"
        f"[auth admin]\ndriver=HS256\nsecret={SECRET}%(ZUUL_NOPE)s\n"
    )
    text = fitting(DEFAULT, password=f"{SECRET}%", executor=f"variables={SECRET}", extra=extra)
    text = text.replace("prometheus_port=9091", f"prometheus_port={SECRET}#")
    conf = tmp_path / "zuul.conf"
    conf.write_text(text)
    seen = 0
    for argv in commands(kit, conf).values():
        result = zuul_k8s(*argv)
        assert SECRET not in result.stdout + result.stderr, argv
        seen += result.stdout.count("zuulconf") + result.stderr.count("zuulconf")
    assert seen >= 5  # the mistakes were found, not skipped
    broken = [f"[executor]\n{SECRET}\n", f"{SECRET}=1\n[executor]\n",
              f"[keystore]\npassword={SECRET}\npassword={SECRET}\n"]
    for content in broken:
        conf.write_text(content)
        for argv in commands(kit, conf).values():
            result = zuul_k8s(*argv)
            assert result.returncode == 2
            assert SECRET not in result.stdout + result.stderr, argv


@pytest.mark.parametrize(("content", "where", "says"), [
    ("[executor]\nprometheus_port\n", ":line 2: ", "neither `key = value`"),
    ("prometheus_port=9091\n[executor]\n", ":line 1: ", "before the first [section]"),
    ("[executor]\nfinger_port=1\nfinger_port=2\n", ":line 3: ", "executor.finger_port is set twice"),
    ("[executor]\n[executor]\n", ":line 2: ", "section [executor] appears twice"),
], ids=["no-value", "no-section", "duplicate-key", "duplicate-section"])
def test_an_unparseable_zuul_conf_is_exit_2_with_one_message(tmp_path: Path, content: str, where: str,
                                                              says: str) -> None:
    conf = tmp_path / "zuul.conf"
    conf.write_text(content)
    for command in ("render", "validate"):
        result = zuul_k8s(command, "--zuul-conf", str(conf))
        assert result.returncode == 2
        assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
        assert f"error: {conf}{where}" in result.stderr and says in result.stderr
        assert result.stdout == ""


def test_a_missing_or_binary_zuul_conf(tmp_path: Path) -> None:
    missing = zuul_k8s("validate", "--zuul-conf", str(tmp_path / "nope.conf"))
    assert missing.returncode == 2
    assert missing.stderr == f"error: {tmp_path / 'nope.conf'}: cannot read zuul.conf: No such file or directory\n"
    binary = tmp_path / "zuul.conf"
    binary.write_bytes(b"[executor]\nx=\xff\n")
    result = zuul_k8s("render", "--zuul-conf", str(binary))
    assert result.returncode == 2 and f"{binary}:line 2: is not UTF-8" in result.stderr


def test_parse_errors_name_lines_not_content() -> None:
    with pytest.raises(UserError) as caught:
        load(f"[keystore]\n{SECRET}\n".encode(), "zuul.conf")
    assert SECRET not in str(caught.value)


def test_without_zuul_conf_the_unchecked_part_is_said_once(kit: Path, tmp_path: Path) -> None:
    argvs = [["render", "-c", str(kit)], ["validate", "-c", str(kit)], ["validate", "-o", "json"],
             ["apply", "-c", str(kit), "--kubeconfig", str(tmp_path / "kc.yaml")]]
    for argv in argvs:
        result = zuul_k8s(*argv)
        assert result.stderr.count("note: zuul.conf not checked (no --zuul-conf FILE)") == 1, argv
        assert "note:" not in result.stdout
    namespace_only = tmp_path / "ns.yaml"
    namespace_only.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    assert "note:" not in zuul_k8s("validate", "-f", str(namespace_only)).stderr  # no executor: nothing to say


def test_init_writes_the_starter_zuul_conf_next_to_the_config(tmp_path: Path) -> None:
    result = zuul_k8s("init", str(tmp_path / "kit.yaml"))
    assert result.returncode == 0 and "zuul.conf.example" in result.stdout
    starter = tmp_path / "zuul.conf.example"
    assert starter.read_text() == examples.ZUUL_CONF.read_text()
    again = zuul_k8s("init", str(tmp_path / "other.yaml"))
    assert again.returncode == 2 and "zuul.conf.example: exists already" in again.stderr
    assert not (tmp_path / "other.yaml").exists()


def test_the_starter_fits_the_pod_once_its_placeholders_are_replaced() -> None:
    text = examples.ZUUL_CONF.read_text()
    assert {(f.rule, f.path) for f in check(text, DEFAULT)} == {
        ("placeholder", "zookeeper.hosts"), ("placeholder", "keystore.password")}
    assert check(text.replace("CHANGE-ME", "zk1"), DEFAULT) == []
    statefulset = objects(workload={"kind": "StatefulSet"}, state={"type": "pvc"})
    assert check(text.replace("CHANGE-ME", "zk1"), statefulset) == []


ISSUE_MISTAKES = """[zookeeper]
hosts=zk1.example.org:2281
tls_ca=/etc/zuul/tls/ca.pem
tls_cert=/tls/client/tls.crt
tls_key=/tls/client/tls.key

[keystore]
password=Planted-Zuul-Secret-4711-50%off

[connection "gerrit"]
driver=gerrit
server=review.example.org
user=zuul
sshkey=/var/ssh/zuul
password=%(ZUUL_GERRIT_PASSWORD)s

[executor]
prometheus-port=9091
finger_port=79
private_key_file=/var/lib/zuul/ssh/id_rsa
log_config=/etc/zuul/logging.yaml
job_dir=/tmp/builds
git_dir=/srv/git
"""


def test_each_mistake_of_the_issue_is_caught_by_validate(tmp_path: Path) -> None:
    """Issue 12's zuul.conf mistakes, one file: each is a finding of `validate --zuul-conf`."""
    conf = tmp_path / "zuul.conf"
    conf.write_text(ISSUE_MISTAKES)
    result = zuul_k8s("validate", "--zuul-conf", str(conf), "-o", "json")
    assert result.returncode == 1 and SECRET not in result.stdout + result.stderr
    found = {(f["severity"], f["rule"], f["path"]) for f in json.loads(result.stdout) if f["source"] == "zuulconf"}
    assert found == {
        ("error", "prometheusPort", "executor.prometheus_port"),
        ("warning", "unknownKey", "executor.prometheus-port"),
        ("error", "fingerPort", "executor.finger_port"),
        ("error", "emptyVolume", "executor.private_key_file"),
        ("error", "notMounted", "executor.log_config"),
        ("error", "notMounted", "zookeeper.tls_ca"),
        ("error", "notMounted", 'connection "gerrit".sshkey'),
        ("error", "stateVolume", "executor.job_dir"),
        ("error", "notWritable", "executor.git_dir"),
        ("error", "interpolation", "keystore.password"),
        ("error", "interpolation", 'connection "gerrit".password'),
        ("warning", "hostname", "executor.hostname"),
    }


def test_upgrade_checks_the_zuul_conf_before_touching_a_cluster(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`upgrade --zuul-conf` holds the file to the pod as apply does, before connecting."""
    from zuul_k8s.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("namespace: {name: zuul}\n")
    conf = tmp_path / "zuul.conf"
    conf.write_text("[executor]\nfinger_port = 79\n")
    code = main(["upgrade", "--image", "quay.io/zuul-ci/zuul-executor:14.3.0", "-c", str(config),
                 "--zuul-conf", str(conf), "--kubeconfig", str(tmp_path / "no-such-kubeconfig")])
    err = capsys.readouterr().err
    assert code == 1
    assert "zuul.conf:executor.prometheus_port: not set" in err
    assert "refusing to touch the cluster" in err

"""The zuul-k8s-selftest job as files: complete, consistent with the kit's pod, and its checker's parts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pyfiles import load, run_ansible_module, top_level_imports
from zuul_k8s import zuuljob
from zuul_k8s.config import load_config
from zuul_k8s.errors import UserError
from zuul_k8s.render import render
from zuul_k8s.selftest import jobcheck, report
from zuul_k8s.selftest.local import find_executor

ROOT = Path(__file__).resolve().parents[2]


def _job() -> dict[str, Any]:
    documents = yaml.safe_load(zuuljob.files()[zuuljob.JOB_FILE])
    [job] = [d["job"] for d in documents if "job" in d]
    return job


def test_the_job_has_no_nodes_and_runs_the_playbook_shipped_with_it() -> None:
    job = _job()
    assert job["name"] == zuuljob.JOB_NAME
    assert job["nodeset"] == {"nodes": []}, "no nodes: the playbook runs on the executor, in bwrap"
    assert job["run"] == zuuljob.PLAYBOOK
    assert "parent" not in job, "an untrusted project may not define a base job"
    assert set(zuuljob.files()) == {zuuljob.JOB_FILE, zuuljob.PLAYBOOK,
                                    f"{zuuljob.FILES_DIR}/jobcheck.py",
                                    f"{zuuljob.FILES_DIR}/probe.py"}


def test_the_playbook_runs_the_checker_on_localhost_and_returns_its_report() -> None:
    [play] = yaml.safe_load(zuuljob.files()[zuuljob.PLAYBOOK])
    assert play["hosts"] == "localhost"
    check, give, fail = play["tasks"]
    argv = check["command"]["argv"]
    assert argv[1] == "{{ playbook_dir }}/files/jobcheck.py"
    options = {argv[i]: argv[i + 1] for i in range(2, len(argv), 2)}
    parsed = jobcheck.parse_args([o for pair in options.items() for o in pair])
    for key in zuuljob_paths():
        assert options[f"--{key.replace('_', '-')}"] == f"{{{{ zuul_k8s_selftest_paths.{key} }}}}"
        assert getattr(parsed, key) == options[f"--{key.replace('_', '-')}"]
    assert give["zuul_return"]["file"] == options["--output"]
    assert fail["when"] == "zuul_k8s_selftest_run.rc == 1"


def zuuljob_paths() -> dict[str, str]:
    paths: dict[str, str] = _job()["vars"]["zuul_k8s_selftest_paths"]
    return paths


def test_default_paths_are_where_the_kit_mounts_them() -> None:
    """The job looks where `zuul-k8s render` puts each Secret, and at Zuul's own state defaults."""
    executor = find_executor(render(load_config(None)), "default config")
    mounts = {m["name"]: m for m in executor.container["volumeMounts"]}
    volumes = {v["name"]: v for v in executor.template.spec["volumes"]}

    def secret_file(volume: str, key: str) -> str:
        mount = mounts[volume]
        if mount.get("subPath"):
            return str(mount["mountPath"])
        items = {i["key"]: i["path"] for i in volumes[volume]["secret"].get("items", [])}
        return f"{mount['mountPath']}/{items.get(key, key)}"

    paths = zuuljob_paths()
    assert paths["zuul_conf"] == secret_file("zuul-config", "zuul.conf")
    assert paths["ssh_key"] == secret_file("ssh-key", "id_rsa")
    assert paths["tls_key"] == secret_file("zookeeper-tls", "tls.key")
    assert paths["state_dir"] == mounts["state"]["mountPath"]
    # Zuul 14.3.0's defaults below the state dir (zuul/merger/server.py git_dir,
    # zuul/executor/server.py command_socket).
    assert paths["git_dir"] == paths["state_dir"] + "/executor-git"
    assert paths["command_socket"] == paths["state_dir"] + "/executor.socket"
    defaults = jobcheck.parse_args(["--work-dir", "/w"])
    assert (defaults.zuul_conf, defaults.ssh_key, defaults.tls_key, defaults.state_dir) == (
        paths["zuul_conf"], paths["ssh_key"], paths["tls_key"], paths["state_dir"])


def test_the_checker_is_python_3_8_and_standard_library_only() -> None:
    imported = top_level_imports(zuuljob.CHECKER_PATH, feature_version=(3, 8))
    # `probe` beside it in the job, `zuul_k8s.selftest.probe` in the package.
    assert imported - {"probe", "zuul_k8s"} <= set(sys.stdlib_module_names) | {"__future__"}


def test_check_ids_are_unique_and_distinct_from_the_probes() -> None:
    ids = [c[0] for c in jobcheck.CHECKS]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("build.") for i in ids)


def test_mountinfo_rows() -> None:
    text = ("70 46 0:42 /newroot / rw,nosuid - tmpfs tmpfs rw\n"
            "79 70 0:44 / /proc rw,nosuid - proc proc rw\n"
            "90 70 8:1 /zuul/builds/x/work /var/lib/zuul/builds/x/work rw,relatime - ext4 /dev/sda1 rw\n"
            "91 70 8:1 /a\\040b /a\\040b ro,relatime - ext4 /dev/sda1 rw\n")
    assert jobcheck.mounts(text) == [
        ("/", ["rw", "nosuid"], "tmpfs"), ("/proc", ["rw", "nosuid"], "proc"),
        ("/var/lib/zuul/builds/x/work", ["rw", "relatime"], "ext4"),
        ("/a b", ["ro", "relatime"], "ext4")]


def test_exposure_tells_invisible_readonly_and_writable_apart(tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    assert jobcheck.exposure(str(secret), "the key").status == "pass"
    secret.write_text("not a key")
    visible = jobcheck.exposure(str(secret), "the key")
    assert visible.status == "fail" and "can write" in visible.message
    assert secret.read_text() == "not a key", "the check leaves the file as it was"
    cache = tmp_path / "git"
    cache.mkdir()
    assert jobcheck.exposure(str(cache), "the cache", readonly_ok=True).status == "fail"
    assert list(cache.iterdir()) == [], "the write probe leaves nothing behind"


def test_the_zuul_return_data_carries_the_report_as_artifact_metadata() -> None:
    from tests.selftest.reports import make_report

    data = jobcheck.zuul_return_data(make_report(kind="job"), "zuul-k8s-selftest.json")
    [artifact] = data["zuul"]["artifacts"]
    assert artifact["name"] == jobcheck.ARTIFACT_NAME and artifact["url"] == "zuul-k8s-selftest.json"
    report.validate(json.loads(json.dumps(artifact["metadata"]["report"])), "round trip")


def test_write_job_writes_the_files_and_refuses_to_clobber(tmp_path: Path) -> None:
    written = zuuljob.write(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(zuuljob.files())
    assert zuuljob.write(tmp_path)  # the same content again: fine
    (tmp_path / zuuljob.PLAYBOOK).write_text("# mine\n")
    with pytest.raises(UserError, match="exists with other content"):
        zuuljob.write(tmp_path)
    assert (tmp_path / zuuljob.PLAYBOOK).read_text() == "# mine\n"
    zuuljob.write(tmp_path, force=True)
    assert (tmp_path / zuuljob.PLAYBOOK).read_bytes() == zuuljob.files()[zuuljob.PLAYBOOK]


def test_cli_write_job(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "zuul_k8s", "selftest", "--write-job",
                             str(tmp_path / "job")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "job" / zuuljob.FILES_DIR / "jobcheck.py").is_file()
    # The checker runs from the written directory, next to its probe.
    help_run = subprocess.run([sys.executable, str(tmp_path / "job" / zuuljob.FILES_DIR /
                                                    "jobcheck.py"), "--help"],
                              capture_output=True, text=True)
    assert help_run.returncode == 0 and "--work-dir" in help_run.stdout, help_run.stderr


def test_selftest_md_lists_every_job_check_in_order_and_the_path_defaults() -> None:
    from tests.docs.markdown import doc, table

    documented = [row[0].strip("`") for row in table(doc("selftest.md"), "build check")]
    assert documented == [check[0] for check in jobcheck.CHECKS]
    defaults = {row[0].strip("`"): row[1].strip("`") for row in table(doc("selftest.md"), "key")
                if row[0].strip("`") in zuuljob_paths()}
    assert defaults == zuuljob_paths()


MODULE = ROOT / "zuul_k8s" / "playbooks" / "library" / "zuul_k8s_zuul_selftest.py"


def _module_run(**args: Any) -> dict[str, Any]:
    return run_ansible_module(MODULE, args, unset=("ZUUL_K8S_TOKEN",), timeout=120)


def test_the_ansible_modules_documentation_matches_its_argument_spec() -> None:
    module = load(MODULE)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert set(doc["options"]) == set(module.ARGUMENT_SPEC)
    for name, option in doc["options"].items():
        assert option["type"] == module.ARGUMENT_SPEC[name]["type"], name
        assert option.get("default") == module.ARGUMENT_SPEC[name].get("default"), name
        assert bool(option.get("required")) == bool(module.ARGUMENT_SPEC[name].get("required")), name


def test_the_ansible_module_fails_clearly_on_bad_input(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    no_token = _module_run(url=f"http://127.0.0.1:{port}", tenant="t")
    assert no_token.get("failed") and "no token" in no_token["msg"]
    token = tmp_path / "token"
    token.write_text("secret-token-value")
    unreachable = _module_run(url=f"http://127.0.0.1:{port}", tenant="t", token_file=str(token))
    assert unreachable.get("failed") and "cannot reach zuul-web" in unreachable["msg"]
    assert "secret-token-value" not in json.dumps(unreachable)


def test_report_v2_tells_probe_and_job_apart_and_v1_stays_valid() -> None:
    """The format one version up: v1 documents of older probes still parse; v2 needs its kind."""
    import copy

    from tests.selftest.reports import make_report

    probe_report = make_report()
    job_report = make_report(kind="job")
    assert probe_report["apiVersion"].endswith("/v2") and "build" not in probe_report

    v1 = copy.deepcopy(probe_report)
    v1["apiVersion"] = "zuul-k8s/selftest-report/v1"
    del v1["kind"]
    report.validate(v1, "a v1 report")

    def refused(data: dict[str, Any], where: str) -> None:
        problems = report.problems(data, "r")
        assert problems, where

    no_kind = copy.deepcopy(probe_report)
    del no_kind["kind"]
    refused(no_kind, "v2 without kind")
    no_build = copy.deepcopy(job_report)
    del no_build["build"]
    refused(no_build, "a job report without its build")
    probe_with_build = copy.deepcopy(probe_report)
    probe_with_build["build"] = job_report["build"]
    refused(probe_with_build, "a probe report with a build")
    short = copy.deepcopy(job_report)
    short["checks"] = short["checks"][:-1]
    refused(short, "a job report missing a check")


@pytest.mark.parametrize(("argv", "expected"), [
    (["/usr/local/bin/python3", "/usr/local/bin/zuul-executor", "-f"], True),
    (["/usr/bin/dumb-init", "--", "zuul-executor", "-f"], True),
    (["zuul-executor", "-d"], True),
    (["python3", "jobcheck.py", "--executor", "zuul-executor-0.zuul-executor.zuul.svc"], False),
    (["bash", "-c", "echo zuul-executor"], False),
    ([], False),
])
def test_the_executors_processes_are_told_by_their_program(argv: list[str], expected: bool) -> None:
    assert jobcheck.is_executor(argv) is expected

"""Pod security settings -> podman flags, per docs/testing-here.md's table."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.core.helpers import config
from zuul_k8s.errors import UserError
from zuul_k8s.profiles import seccomp_profile_path, seccomp_root
from zuul_k8s.render import render
from zuul_k8s.selftest.local import Executor, find_executor
from zuul_k8s.selftest.podman import Options, Translation, capability_set, translate
from zuul_k8s.workloads import pod_template

KIT = Options(seccomp_root=seccomp_root())


def rendered(**sections: Any) -> dict[str, Any]:
    objects = render(config(**sections))
    return next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))


def flags_of(obj: dict[str, Any], options: Options = KIT) -> Translation:
    executor = find_executor([obj], "test.yaml")
    return translate(executor.template, executor.container_path, executor.container, options,
                     "test.yaml")


def test_kit_default_pod_at_uid_10001() -> None:
    profile = seccomp_profile_path()
    assert profile.is_file()
    assert list(flags_of(rendered()).flags) == [
        "--uidmap", "0:2097152:65536", "--gidmap", "0:2097152:65536",
        "--security-opt", "unmask=ALL",
        "--cap-drop=all",
        "--security-opt", f"seccomp={profile}",
        "--security-opt", "no-new-privileges",
        "--user", "10001:10001",
        "--group-add", "10001",
        "--read-only",  # the kit's readOnlyRootFilesystem (docs/executor-pod.md)
    ]


def test_kit_default_pod_at_uid_0_adds_only_setfcap() -> None:
    translation = flags_of(rendered(user={"uid": 0, "gid": 0, "fsGroup": 0}))
    flags = list(translation.flags)
    assert flags[flags.index("--cap-drop=all") + 1] == "--cap-add=SETFCAP"
    assert flags[flags.index("--user") + 1] == "0:0"
    assert translation.uid == 0


def test_apparmor_is_a_note_where_the_host_has_none() -> None:
    translation = flags_of(rendered())
    assert not any("apparmor" in flag for flag in translation.flags)
    assert any(note.startswith("appArmorProfile: not applied") for note in translation.notes)
    with_apparmor = flags_of(rendered(), Options(seccomp_root=seccomp_root(), host_apparmor=True))
    assert "apparmor=zuul-executor" in with_apparmor.flags


@pytest.mark.parametrize(("runtime", "add", "drop", "expected"), [
    ("crio", [], [], "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,"
                     "NET_BIND_SERVICE,SETGID,SETPCAP,SETUID"),
    ("containerd", [], ["NET_RAW", "CAP_MKNOD"],
     "--cap-drop=all --cap-add=AUDIT_WRITE,CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,"
     "NET_BIND_SERVICE,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT"),
    ("crio", ["SETFCAP"], ["ALL"], "--cap-drop=all --cap-add=SETFCAP"),
    ("crio", [], ["ALL"], "--cap-drop=all"),
    ("crio", ["ALL"], ["CHOWN"], "--cap-add=all --cap-drop=CHOWN"),
    ("crio", ["ALL", "SYS_ADMIN"], ["ALL"], "--cap-drop=all --cap-add=SYS_ADMIN"),
    ("crio", ["cap_sys_admin"], ["SYS_ADMIN"], "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,"
     "FOWNER,FSETID,KILL,NET_BIND_SERVICE,SETGID,SETPCAP,SETUID"),
])
def test_capabilities_follow_the_runtimes_order(runtime: str, add: list[str], drop: list[str],
                                                 expected: str) -> None:
    assert " ".join(capability_set(runtime, add, drop).flags()) == expected


def edited(obj: dict[str, Any], pod: dict[str, Any] | None = None,
           container: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy with pod securityContext / container securityContext keys set (None deletes)."""
    obj = copy.deepcopy(obj)
    template = pod_template(obj)
    assert template is not None
    spec = template.spec
    for key, value in (pod or {}).items():
        target = spec.setdefault("securityContext", {})
        if key == "hostUsers":
            target = spec
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    context = spec["containers"][0].setdefault("securityContext", {})
    for key, value in (container or {}).items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    return obj


def test_masked_proc_and_host_users_translate_to_podman_defaults() -> None:
    flags = flags_of(edited(rendered(), pod={"hostUsers": None}, container={"procMount": None}))
    assert "--uidmap" not in flags.flags
    assert "unmask=ALL" not in flags.flags


def test_unset_seccomp_is_unconfined_and_runtime_default_needs_the_runtimes_file(
        tmp_path: Path) -> None:
    unset = flags_of(edited(rendered(), pod={"seccompProfile": None}))
    assert "seccomp=unconfined" in unset.flags
    runtime_default = edited(rendered(), pod={"seccompProfile": {"type": "RuntimeDefault"}})
    with pytest.raises(UserError) as error:
        flags_of(runtime_default)
    (problem,) = error.value.problems
    assert problem.path == "spec.template.spec.securityContext.seccompProfile.type"
    assert "--runtime-default-seccomp" in problem.message
    moby = tmp_path / "default.json"
    moby.write_text("{}")
    given = flags_of(runtime_default, Options(runtime_default_seccomp=moby))
    assert f"seccomp={moby}" in given.flags


def test_container_seccomp_overrides_the_pods_and_localhost_must_resolve(tmp_path: Path) -> None:
    obj = edited(rendered(), container={"seccompProfile": {"type": "Localhost",
                                                            "localhostProfile": "x/mine.json"}})
    with pytest.raises(UserError) as error:
        flags_of(obj)
    (problem,) = error.value.problems
    assert problem.path == ("spec.template.spec.containers[0].securityContext.seccompProfile"
                            ".localhostProfile")
    assert "--seccomp-root" in problem.message
    (tmp_path / "x").mkdir()
    (tmp_path / "x/mine.json").write_text("{}")
    flags = flags_of(obj, Options(seccomp_root=tmp_path)).flags
    assert f"seccomp={tmp_path / 'x/mine.json'}" in flags


def test_root_with_run_as_non_root_is_refused() -> None:
    obj = edited(rendered(), pod={"runAsUser": 0, "runAsNonRoot": True})
    with pytest.raises(UserError, match="kubelet would refuse"):
        flags_of(obj)


def test_added_capabilities_for_a_non_root_user_carry_a_note() -> None:
    obj = edited(rendered(), container={"capabilities": {"drop": ["ALL"], "add": ["SETFCAP"]}})
    translation = flags_of(obj)
    assert "--cap-add=SETFCAP" in translation.flags
    assert any("ambient" in note for note in translation.notes)


def test_legacy_apparmor_annotation_is_read(tmp_path: Path) -> None:
    obj = edited(rendered(), pod={"appArmorProfile": None})
    obj["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/zuul-executor": "localhost/custom"}
    flags = flags_of(obj, Options(seccomp_root=seccomp_root(), host_apparmor=True)).flags
    assert "apparmor=custom" in flags


def test_find_executor_by_name_then_by_image() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "other"},
           "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "zuul"},
           "spec": {"template": {"spec": {
               "initContainers": [{"name": "zuul-executor", "image": "init"}],
               "containers": [{"name": "executor", "image": "quay.io/zuul-ci/zuul-executor:9"}]}}}}
    found: Executor = find_executor([{"kind": "ConfigMap"}, job, sts], "m.yaml")
    assert found.container["name"] == "executor"
    assert found.container_path == ("spec", "template", "spec", "containers", 0)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "log-shipper", "image": "example/zuul-executor-logs"},
        {"name": "zuul-executor", "image": "mine/executor"}]}}
    assert find_executor([pod, sts], "m.yaml").container["name"] == "zuul-executor"
    with pytest.raises(UserError, match="no workload with a zuul-executor container"):
        find_executor([job], "m.yaml")

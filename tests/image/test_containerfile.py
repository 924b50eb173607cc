"""The kit's own image: built from the Containerfile with podman, then used as a user would.

The base is built here (tests/image/base.py) and passed as BASE_IMAGE; nothing
is pulled (`--pull=never`). pip inside the build reaches PyPI through this
machine's proxy, so the host's CA bundle goes in as the `pip-ca` build secret.
On a fresh machine: base image about 2 min, kit image about 2.5 min (the
dependency layer, from PyPI). podman's layer cache keeps that layer until
pyproject.toml changes: after a code edit the build takes about 40 s, unchanged
about 20 s; the tests themselves about 20 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.base import KIT_BASE
from tests.runtime.images import build
from tests.runtime.podman_conf import write_containers_conf
from tests.tools import REPO, require_tool

pytestmark = pytest.mark.runtime

TAG = "localhost/zuul-k8s:test"
UID = "10002"
ENTRYPOINT = ["/opt/zuul-k8s/bin/zuul-k8s"]
SOURCE = "https://example.org/zuul-k8s.git"
REVISION = "0123456789abcdef0123456789abcdef01234567"
BAD_MANIFEST = REPO / "tests/core/manifests/operator-style-statefulset.yaml"

Podman = Callable[..., subprocess.CompletedProcess[str]]


def host_kit(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The same command from the checkout on the host: what the image must reproduce."""
    return subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "zuul_k8s", *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, timeout=120,
    )


def pip_ca() -> Path | None:
    """The CA bundle the host's pip trusts (PIP_CERT, else the system bundle)."""
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman with this machine's containers.conf (runc, cgroupfs, ulimits)."""
    for tool in ("podman", "runc"):
        require_tool(tool)
    conf = write_containers_conf(tmp_path_factory.mktemp("podman"))
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], input=stdin, capture_output=True, text=True, env=env, timeout=timeout
        )

    return run


@pytest.fixture(scope="module")
def base_image(podman: Podman) -> str:
    """Debian bookworm with python3 and python3-venv (about 2 min the first time on a machine)."""
    require_tool("debootstrap")
    require_tool("chroot")
    try:
        return build(KIT_BASE)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        pytest.fail(f"building the base image {KIT_BASE.tag} failed: {exc}")


@pytest.fixture(scope="module")
def image(podman: Podman, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The kit's image ID. Tests run it by ID, so a parallel session retagging TAG cannot swap it."""
    iidfile = tmp_path_factory.mktemp("kit-image") / "iid"
    argv = [
        "build", "--pull=never", "--file", str(REPO / "Containerfile"), "--tag", TAG,
        "--iidfile", str(iidfile),
        "--build-arg", f"BASE_IMAGE={base_image}",
        "--build-arg", f"SOURCE={SOURCE}",
        "--build-arg", f"REVISION={REVISION}",
    ]
    if index := os.environ.get("PIP_INDEX_URL"):
        argv += ["--build-arg", f"INDEX_URL={index}"]
    if ca := pip_ca():
        argv += ["--secret", f"id=pip-ca,src={ca}"]
    result = podman(*argv, str(REPO), timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"podman build failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return iidfile.read_text().strip()


@pytest.fixture(scope="module")
def config(podman: Podman, image: str) -> dict[str, Any]:
    result = podman("image", "inspect", image)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]["Config"]


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_render_in_the_image_is_the_checkouts_render(podman: Podman, image: str) -> None:
    inside = podman("run", "--rm", image, "render")
    assert inside.returncode == 0, inside.stderr
    documents = list(yaml.safe_load_all(inside.stdout))
    executors = [each for each in documents if each and each["kind"] == "Deployment"]
    assert len(executors) == 1, [each["kind"] for each in documents if each]
    assert executors[0]["spec"]["template"]["spec"]["hostUsers"] is False
    outside = host_kit("render")
    assert outside.returncode == 0, outside.stderr
    assert inside.stdout == outside.stdout


PACKAGE_DIGESTS = """\
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__import__("zuul_k8s").__file__).parent
print(json.dumps({str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}))
"""


def test_the_image_carries_the_checkouts_kit(podman: Podman, image: str) -> None:
    """Every file of the installed package is the checkout's, and no module is missing.

    Guards the layer cache: a stale kit layer would pass the render test as long as
    rendering did not change.
    """
    inside = podman("run", "--rm", "--entrypoint", "python3", image, "-c", PACKAGE_DIGESTS)
    assert inside.returncode == 0, inside.stderr
    installed: dict[str, str] = json.loads(inside.stdout)
    outside = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-c", PACKAGE_DIGESTS, str(REPO / "zuul_k8s")],
        capture_output=True, text=True, check=True,
    )
    checkout: dict[str, str] = json.loads(outside.stdout)
    assert {name: digest for name, digest in installed.items() if checkout.get(name) != digest} == {}
    modules = {name for name in checkout if name.endswith(".py")}
    assert modules and modules <= installed.keys(), sorted(modules - installed.keys())


def test_validate_in_the_image_passes_the_example_config(podman: Podman, image: str) -> None:
    result = podman("run", "--rm", image, "validate")
    assert (result.returncode, result.stdout.strip()) == (0, "ok: no findings"), result.stderr


def test_validate_in_the_image_finds_what_the_checkout_finds(podman: Podman, image: str) -> None:
    """Another deployer's manifest on stdin: the image carries the OpenAPI schemas and the contract."""
    manifest = BAD_MANIFEST.read_text()
    inside = podman("run", "--rm", "-i", image, "validate", "-f", "-", stdin=manifest)
    outside = host_kit("validate", "-f", "-", stdin=manifest)
    assert inside.returncode == 1, inside.stderr
    assert "[contract/hostUsers]" in inside.stdout
    assert "[openapi/" in inside.stdout
    assert (inside.returncode, inside.stdout) == (outside.returncode, outside.stdout)


def test_runs_as_the_unprivileged_kit_user(podman: Podman, image: str, config: dict[str, Any]) -> None:
    result = podman("run", "--rm", "--entrypoint", "id", image)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"uid={UID}(zuul-k8s) gid={UID}(zuul-k8s) groups={UID}(zuul-k8s)"
    # Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
    assert config["User"] == f"{UID}:{UID}"


def test_render_needs_no_writable_filesystem_nor_a_known_uid(podman: Podman, image: str) -> None:
    """As under readOnlyRootFilesystem and an arbitrary runAsUser (OpenShift-style)."""
    result = podman("run", "--rm", "--read-only", "--user", "4321:0", image, "render")
    assert result.returncode == 0, result.stderr
    assert "hostUsers: false" in result.stdout


def test_ansible_runner_drives_ansible_playbook_in_the_image(podman: Podman, image: str) -> None:
    """ansible-runner finds ansible-playbook on PATH only (docs/testing-here.md, "Ansible")."""
    script = (
        "set -e; d=$(mktemp -d); mkdir \"$d/project\"; "
        "printf '%s\\n' '- hosts: localhost' '  gather_facts: false' '  tasks:' "
        "'    - ansible.builtin.debug: {msg: kit-image-ok}' > \"$d/project/check.yaml\"; "
        "ansible-runner run \"$d\" -p check.yaml --ident check"
    )
    result = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"msg": "kit-image-ok"' in result.stdout
    assert "ok=1" in result.stdout


def test_the_kits_playbooks_parse_with_the_images_ansible(podman: Podman, image: str) -> None:
    """The playbooks are in the installed wheel, and their modules resolve next to them."""
    script = (
        "set -e; p=$(python3 -c 'import importlib.resources as r; print(r.files(\"zuul_k8s\") / \"playbooks\")'); "
        "for each in \"$p\"/*.yaml; do ansible-playbook --syntax-check \"$each\"; done; ls \"$p\""
    )
    result = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    shipped = set(result.stdout.split())
    expected = {path.name for path in (REPO / "zuul_k8s/playbooks").glob("*.yaml")}
    assert expected and expected <= shipped


def test_entrypoint_and_default_command(podman: Podman, image: str, config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Cmd"] == ["--help"]
    result = podman("run", "--rm", image)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: zuul-k8s")


def test_oci_labels(podman: Podman, image: str, config: dict[str, Any], base_image: str) -> None:
    labels = config["Labels"]
    version = podman("run", "--rm", image, "--version")
    assert version.returncode == 0, version.stderr
    # The Containerfile's VERSION default must follow pyproject.toml.
    assert version.stdout.strip() == f"zuul-k8s {project_version()}"
    expected = {
        "org.opencontainers.image.title": "zuul-k8s",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": project_version(),
        "org.opencontainers.image.source": SOURCE,
        "org.opencontainers.image.revision": REVISION,
        "org.opencontainers.image.base.name": base_image,
    }
    assert {key: labels.get(key) for key in expected} == expected
    assert "unprivileged" in labels["org.opencontainers.image.description"]


def test_no_build_leftovers_in_the_image(podman: Podman, image: str) -> None:
    """The builder's sources, wheel, build backend, index wrapper and CA secret stay out of the final image."""
    script = "for each in /src /wheels /opt/build /usr/local/bin/with-index /run/secrets/pip-ca; do test ! -e $each || echo $each; done"
    result = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr

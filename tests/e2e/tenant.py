"""The tenant: a config project and untrusted projects in local git repositories.

Zuul's `git` driver needs no code review system: a connection names a base
URL and Zuul clones `<baseurl>/<project>`. The repositories are served by
`git daemon` (read-only) on loopback, or on the address a real node's pods
reach this machine at, so that the scheduler here and the executor in its
container fetch them the same way and the executor's pod needs no mount
beyond what the kit renders.

The `manual` pipeline is entered through zuul-web's enqueue API (an admin
token); its git `ref-updated` trigger only matches tags nobody pushes.
Every job has an empty nodeset, so its playbooks run on the executor, inside bwrap.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e import process

CONNECTION = "e2e-git"
TENANT = "e2e"
PIPELINE = "manual"
CONFIG_PROJECT = "zuul-config"
ADMIN_RULE = "e2e-admin"
ADMIN_SUBJECT = "e2e-admin"
BRANCH = "master"

CONFIG_FILES = {
    "zuul.d/pipelines.yaml": f"""\
- pipeline:
    name: {PIPELINE}
    description: Entered only through zuul-web's enqueue API.
    manager: independent
    precedence: high
    trigger:
      {CONNECTION}:
        - event: ref-updated
          ref: ^refs/tags/e2e-never$
""",
    "zuul.d/jobs.yaml": """\
- job:
    name: base
    parent: null
    description: The base job; no nodes, so every playbook runs on the executor.
    nodeset:
      nodes: []
    timeout: 1200
""",
}

# project -> file -> content. Each project runs its jobs in the manual pipeline.
SANDBOX_PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Show the sandbox
      shell: |
        sleep 5  # time for a log stream to attach before the interesting lines
        echo "E2E uid_map: $(tr -s ' ' < /proc/self/uid_map)"
        echo "E2E id: $(id)"
        echo "E2E pid: $$"
        echo "E2E pids: $(ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' ')"
        echo "E2E pidns: $(readlink /proc/self/ns/pid)"
        echo "E2E pid1: $(cat /proc/1/comm)"
        echo "E2E userns: $(readlink /proc/self/ns/user)"
        echo "E2E status: $(grep -E '^(NSpid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t\\n' '  ')"
        echo "E2E df: $(df -P . | tail -1)"
      args:
        executable: /bin/bash
"""

SLOW_PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  vars:
    seconds: "{{ e2e_seconds | default(30) }}"
  tasks:
    - name: Print a line every second
      shell: |
        for i in $(seq 1 {{ seconds }}); do echo "E2E tick $i"; sleep 1; done
        echo "E2E slow job done"
      args:
        executable: /bin/bash
"""

PROJECTS: dict[str, dict[str, str]] = {
    "sandbox": {
        "zuul.yaml": f"""\
- job:
    name: e2e-sandbox
    run: playbooks/sandbox.yaml

- project:
    {PIPELINE}:
      jobs:
        - e2e-sandbox
""",
        "playbooks/sandbox.yaml": SANDBOX_PLAYBOOK,
    },
    "slow": {
        "zuul.yaml": f"""\
- job:
    name: e2e-slow
    run: playbooks/slow.yaml
    vars:
      e2e_seconds: 25

- project:
    {PIPELINE}:
      jobs:
        - e2e-slow
""",
        "playbooks/slow.yaml": SLOW_PLAYBOOK,
    },
}


def main_yaml(projects: list[str]) -> str:
    untrusted = "".join(f"          - {name}\n" for name in projects)
    return f"""\
- authorization-rule:
    name: {ADMIN_RULE}
    conditions:
      - sub: {ADMIN_SUBJECT}

- tenant:
    name: {TENANT}
    admin-rules:
      - {ADMIN_RULE}
    source:
      {CONNECTION}:
        config-projects:
          - {CONFIG_PROJECT}
        untrusted-projects:
{untrusted}"""


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=zuul-k8s e2e", "-c", "user.email=e2e@example.invalid",
         *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit(repo: Path, files: Mapping[str, str], message: str) -> str:
    """Writes `files` into the repository (creating it), commits them; the new sha."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", BRANCH)
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@dataclass
class Tenant:
    """The repositories, their git daemon, and main.yaml."""

    repos: Path
    main_yaml: Path
    service: process.Service
    port: int
    projects: list[str] = field(default_factory=list)
    address: str = "127.0.0.1"

    @property
    def baseurl(self) -> str:
        return f"git://{self.address}:{self.port}"

    def head(self, project: str) -> str:
        return _git(self.repos / project, "rev-parse", "HEAD")

    def add(self, name: str, files: Mapping[str, str]) -> str:
        """A new untrusted project (or a new commit to one), listed in main.yaml; its head."""
        sha = commit(self.repos / name, files, f"{name}: jobs")
        if name not in self.projects:
            self.projects.append(name)
            self.main_yaml.write_text(main_yaml(self.projects))
        return sha


def create(workdir: Path, projects: Mapping[str, Mapping[str, str]] | None = None,
           address: str = "127.0.0.1", timeout: float = 30.0) -> Tenant:
    """Repositories for the config project and `projects` (default PROJECTS), served on `address`."""
    projects = PROJECTS if projects is None else projects
    repos = workdir / "repos"
    commit(repos / CONFIG_PROJECT, CONFIG_FILES, "Pipeline and base job")
    for name, files in projects.items():
        commit(repos / name, files, f"{name}: jobs")
    main = workdir / "main.yaml"
    main.write_text(main_yaml(list(projects)))
    port = process.free_port()
    service = process.start("git-daemon", [
        "git", "daemon", "--reuseaddr", "--export-all", f"--listen={address}", f"--port={port}",
        f"--base-path={repos}",
    ], workdir / "git-daemon.log")
    process.wait_for(lambda: process.port_open(port, address), f"git daemon on {address}:{port}",
                     timeout, service)
    return Tenant(repos, main, service, port, list(projects), address)

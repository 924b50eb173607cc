"""Options every cluster subcommand shares (preflight, apply, selftest, upgrade)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zuul_k8s.cli import common
from zuul_k8s.errors import Problem, UserError


def add_kubeconfig(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)")


def add_timeout(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--timeout", type=int, metavar="SECONDS",
        help=f"the total wall time {what}; old executors still draining when it "
        "ends are reported, not failed (default: rolls x replicas x (gracefulStopSeconds + "
        "300) + 300, see docs/upgrading.md)")


def add_config(parser: argparse.ArgumentParser) -> None:
    """-c for the commands that change a cluster: no built-in default (require_config)."""
    parser.add_argument("-c", "--config", metavar="CONFIG",
                        help="the kit's config file (needed: this command never deploys the "
                        "built-in example; `zuul-k8s init` writes a starter)")


def require_config(args: argparse.Namespace, command: str) -> None:
    """`apply` and `upgrade` change a cluster: they never fall back to the built-in example."""
    if args.config is None:
        raise UserError(Problem(
            "-c", "", f"`zuul-k8s {command}` needs your config: pass -c CONFIG (`zuul-k8s init` "
            "writes a starter); it does not deploy the built-in example to whatever cluster the "
            "kubeconfig points at"))


def rendered(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]] | None]:
    """(config, objects), or (config, None) after printing the blocking findings."""
    return rendered_config(common.config_from(args), args)


def rendered_config(config: Any, args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]] | None]:
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate

    data, zuul_conf = common.zuul_conf_from(args)
    objects = render(config, data)
    findings = validate(objects, common.target_of(config), zuul_conf)
    common.note_unchecked(zuul_conf, objects)
    errors = common.blocking(findings)
    if errors:
        common.print_findings(findings, "text", sys.stderr)
        print(f"refusing to touch the cluster: {len(errors)} error(s) in the rendered objects",
              file=sys.stderr)
        return config, None
    return config, objects


def say(line: str) -> None:
    print(line, flush=True)


def add_via_ansible(parser: argparse.ArgumentParser, playbook: str) -> None:
    parser.add_argument(
        "--via-ansible", action="store_true",
        help=f"run the kit's playbooks/{playbook} through ansible-runner instead (the same "
        "module and Python API, the way Zuul or AWX would run it; needs ansible-core and "
        "ansible-runner); prints Ansible's output, exit 0 when the play succeeds, 1 when it fails")


def via_ansible(args: argparse.Namespace, playbook: str, variables: dict[str, Any]) -> int:
    """Run playbooks/PLAYBOOK on localhost through ansible-runner with `variables`.

    The variables go in as host variables of a one-host YAML inventory (the runner takes
    no extra vars); paths are made absolute, since the play runs from a private dir."""
    import tempfile
    from pathlib import Path

    import yaml

    from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from zuul_k8s.nodes import PLAYBOOK_DIR

    try:
        import ansible_runner  # noqa: F401

        from zuul_k8s.nodes.runner import run_playbook
    except ImportError as exc:
        raise UserError(Problem("--via-ansible", "", f"needs ansible-runner ({exc}); fix: "
                                "pip install ansible-core ansible-runner")) from None
    paths = ("zuul_k8s_config", "kubeconfig", "zuul_conf")
    host: dict[str, Any] = {"ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable}
    for key, value in variables.items():
        if value is None:
            continue
        if key in paths:
            if not Path(value).is_file():
                raise UserError(Problem(str(value), "", "no such file"))
            value = str(Path(value).resolve())
        host[key] = value
    inventory = {"all": {"hosts": {"localhost": host}}}

    def on_event(event: dict[str, Any]) -> None:
        text = str(event.get("stdout") or "")
        if text.strip():
            print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="zuul-k8s-play-") as tmp:
        path = Path(tmp) / "inventory.yaml"
        path.write_text(yaml.safe_dump(inventory))
        outcome = run_playbook(PLAYBOOK_DIR / playbook, str(path), on_event=on_event)
    if outcome.status == "successful":
        return EXIT_OK
    if outcome.status == "failed":
        return EXIT_FAILED
    print(f"error: ansible-runner ended {outcome.status} (rc {outcome.rc})", file=sys.stderr)
    sys.stderr.write(outcome.stdout_tail)
    return EXIT_USAGE

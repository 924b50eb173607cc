"""`zuul-k8s nodes prepare|verify|cleanup`: the node playbooks, through ansible-runner.

`verify` is `prepare` in check mode, read differently: a node passes when the
prepare playbook would change nothing there. One playbook, so what verify
checks can never drift from what prepare installs; and check mode runs every
detection and comparison for real (the SELinux module is read back from the
store, the AppArmor profile compiled by the node's parser).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zuul_k8s.errors import EXIT_FAILED, EXIT_OK, Problem, UserError

ACTIONS = {
    "prepare": "install the SELinux module, seccomp and AppArmor profiles where needed",
    "verify": "check that every node has them, current (prepare in check mode; changes nothing)",
    "cleanup": "remove everything prepare installed",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "nodes",
        help="prepare Kubernetes nodes (SELinux module, seccomp and AppArmor profiles)",
        description="Run the kit's node playbooks (plain Ansible, also usable with "
        "ansible-playbook) against any inventory ansible-playbook -i takes (INI, YAML, a "
        "directory with group_vars/host_vars, an inventory script or plugin config), one line "
        "per host and task as they finish, then a table per host. The inventory is read by "
        "Ansible itself (ansible-inventory --list) and each host's zuul_k8s_ variables are "
        "checked before anything runs (exit 2 naming the host and variable). Exit 1 when any "
        "host failed (verify: or lacks a part).",
    )
    actions = parser.add_subparsers(dest="nodes_action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    for name, help_text in ACTIONS.items():
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument(
            "-i",
            "--inventory",
            required=True,
            metavar="INVENTORY",
            help="Ansible inventory: INI, YAML, a directory, a script or a plugin config "
            "(variables: schemas/node-vars.schema.json)",
        )
        action.add_argument("-l", "--limit", metavar="HOSTS", help="Ansible host pattern")
        action.add_argument("-f", "--forks", type=int, metavar="N", help="hosts in parallel (Ansible's default: 5)")
        if name != "verify":
            action.add_argument("--check", action="store_true", help="show what would change, change nothing")
        action.add_argument("--diff", action="store_true", help="print each change made (or, checking, due)")
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zuul_k8s import nodes
    from zuul_k8s.nodes import inventory, runner
    from zuul_k8s.nodes.summary import Mode, Summary, event_diff, event_line

    inventory.load(args.inventory)  # UserError (exit 2) before anything runs
    if args.forks is not None and args.forks < 1:
        raise UserError("--forks must be 1 or more")
    check = args.nodes_action == "verify" or getattr(args, "check", False)
    mode = {
        "prepare": Mode.CHECK if check else Mode.PREPARE,
        "verify": Mode.VERIFY,
        "cleanup": Mode.CLEANUP_CHECK if check else Mode.CLEANUP,
    }[args.nodes_action]
    playbook = nodes.CLEANUP if args.nodes_action == "cleanup" else nodes.PREPARE
    summary = Summary(mode)

    def on_event(event: dict[str, Any]) -> None:
        line = event_line(event)
        if line is not None:
            print(line, flush=True)
        if args.diff:
            for text in event_diff(event):
                print(f"    {text}", flush=True)
        summary.feed(event)

    outcome = runner.run_playbook(
        playbook,
        args.inventory,
        on_event=on_event,
        check=check,
        limit=args.limit,
        forks=args.forks,
    )
    if not summary.hosts:
        if outcome.status == "successful":
            where = f" matching --limit {args.limit}" if args.limit else ""
            raise UserError(Problem(args.inventory, "", f"no hosts{where}"))
        if args.limit and "no hosts to target" in outcome.stdout_tail:
            raise UserError(Problem(args.inventory, "", f"no host matches --limit {args.limit}"))
        sys.stderr.write(f"error: ansible-playbook failed (rc {outcome.rc}):\n")
        sys.stderr.write(outcome.stdout_tail)
        return EXIT_FAILED
    print()
    print(summary.table())
    return EXIT_FAILED if summary.exit_failed() or outcome.status != "successful" else EXIT_OK

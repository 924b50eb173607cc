"""Node preparation: the kit's playbooks, driven through ansible-runner.

inventory.py checks the inventory before anything runs, runner.py runs a
playbook and streams its events, summary.py turns the events into a table
per host.
"""

from __future__ import annotations

from pathlib import Path

PLAYBOOK_DIR = Path(__file__).resolve().parent.parent / "playbooks"
PREPARE = PLAYBOOK_DIR / "node-prepare.yaml"
CLEANUP = PLAYBOOK_DIR / "node-cleanup.yaml"
VARS_SCHEMA = "node-vars.schema.json"

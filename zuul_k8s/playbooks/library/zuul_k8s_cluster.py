#!/usr/bin/python
"""Ansible module: the kit's cluster workflows (self-test Job, upgrade) through
its Python API, so playbooks need no kubernetes.core collection."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_k8s_cluster
short_description: Run the zuul-k8s self-test Job or an executor upgrade against a cluster
description:
  - V(selftest) runs the self-test probe as a Job with the executor's own pod
    settings (one per eligible node with O(all_nodes)) and returns each node's
    report and diagnoses; it does not fail on a failed check, so the playbook
    can assert on the report.
  - V(upgrade) runs the canary self-test with O(image), rolls the executors one
    at a time and self-tests again; rerun after an interrupt, it resumes.
  - Needs the zuul_k8s package importable by the interpreter that runs the
    module (set C(ansible_python_interpreter) to the kit's Python).
options:
  action:
    description: What to run.
    type: str
    choices: [selftest, upgrade]
    required: true
  config:
    description: The kit's config file (default: the built-in example).
    type: path
  kubeconfig:
    description: Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster).
    type: path
  image:
    description: Image to test (selftest) or to upgrade to (upgrade, required).
    type: str
  node:
    description: Run the self-test on this node only.
    type: str
  all_nodes:
    description: Run the self-test on every node eligible for the executor.
    type: bool
    default: false
  rollback_on_failure:
    description: Upgrade only; restore the previous template when the rollout fails.
    type: bool
    default: false
  timeout:
    description: Seconds for the rollout (upgrade) or the probe (selftest).
    type: int
    default: 900
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Self-test on every node
  zuul_k8s_cluster:
    action: selftest
    all_nodes: true
  register: selftest
"""

RETURN = r"""
ok:
  description: The self-test passed on every node / the upgrade finished.
  type: bool
  returned: always
nodes:
  description: Per node, its report (the probe's JSON), diagnoses, or why there is none.
  type: list
  returned: action=selftest
log:
  description: The progress lines the command line would print.
  type: list
  returned: always
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["selftest", "upgrade"], "required": True},
            "config": {"type": "path"},
            "kubeconfig": {"type": "path"},
            "image": {"type": "str"},
            "node": {"type": "str"},
            "all_nodes": {"type": "bool", "default": False},
            "rollback_on_failure": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 900},
        },
        mutually_exclusive=[("node", "all_nodes")],
        required_if=[("action", "upgrade", ("image",))],
        supports_check_mode=False,
    )
    try:
        from zuul_k8s.cluster import selftest_job, upgrade
        from zuul_k8s.cluster.client import Cluster
        from zuul_k8s.config import load_config
        from zuul_k8s.errors import UserError
    except ImportError as exc:
        module.fail_json(
            msg=f"the zuul_k8s package is not importable by {module._name}'s "
            f"interpreter ({exc}); set ansible_python_interpreter to the kit's Python"
        )
        return
    params = module.params
    log: list[str] = []
    try:
        config = load_config(params["config"])
        cluster = Cluster.connect(params["kubeconfig"])
        if params["action"] == "selftest":
            outcomes = selftest_job.run(
                cluster,
                selftest_job.executor_workload(config),
                image=params["image"],
                node=params["node"],
                all_nodes=params["all_nodes"],
                timeout=min(params["timeout"], 900),
                say=log.append,
            )
            document = json.loads(selftest_job.render_outcomes(outcomes, "json"))
            module.exit_json(changed=False, ok=document["ok"], nodes=document["nodes"], log=log)
        ok = upgrade.upgrade(
            cluster,
            config,
            params["image"],
            rollback_on_failure=params["rollback_on_failure"],
            timeout=params["timeout"],
            say=log.append,
        )
        module.exit_json(changed=True, ok=ok, log=log)
    except UserError as exc:
        module.fail_json(msg="; ".join(str(p) for p in exc.problems), log=log)


if __name__ == "__main__":
    main()

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
  - V(upgrade) validates the objects it would apply (as C(zuul-k8s upgrade) does;
    nothing is applied when they fail), runs the canary self-test with O(image),
    rolls the executors one at a time and self-tests again; rerun after an
    interrupt, it resumes. C(changed) is true only when an object in the
    cluster changed (not for "nothing to do" or a failed canary).
  - Needs the zuul_k8s package importable by the interpreter that runs the
    module (set C(ansible_python_interpreter) to the kit's Python).
options:
  action:
    description: What to run.
    type: str
    choices: [selftest, upgrade]
    required: true
  config:
    description:
      - "The kit's config file (selftest: default the built-in example; upgrade: required,
        it never deploys the built-in example)."
    type: path
  zuul_conf:
    description:
      - Upgrade only; your zuul.conf, whose checksum goes into a pod annotation (as
        C(zuul-k8s upgrade --zuul-conf)); its content is never rendered.
    type: path
  kubeconfig:
    description: "Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)."
    type: path
  image:
    description: Image to test (selftest) or to upgrade to (upgrade, required).
    type: str
  node:
    description: Run the self-test on this node only.
    type: str
  all_nodes:
    description: Run the self-test on every node eligible for the executor (not with O(node)).
    type: bool
    default: false
  rollback_on_failure:
    description:
      - Upgrade only; restore the previous pod template (saved before applying) when
        the rollout or the self-test after it fails.
    type: bool
    default: false
  timeout:
    description:
      - Seconds for the rollouts (upgrade; total wall time, default from
        gracefulStopSeconds as C(zuul-k8s upgrade) computes it) or the probe (selftest,
        default and at most 900).
    type: int
  selftest_timeout:
    description: Upgrade only; seconds for each self-test (canary and after).
    type: int
    default: 300
  start_timeout:
    description: Selftest only; explain and give up on a probe pod not started after this long.
    type: float
    default: 120
attributes:
  check_mode:
    support: none
    description: Not supported; the self-test creates (and removes) Jobs, the upgrade applies.
  diff_mode:
    support: none
    description: Not supported; the upgrade's log names each object created, configured or unchanged.
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
changed:
  description: "Upgrade: an object in the cluster changed. Selftest: always false (its Jobs are removed)."
  type: bool
  returned: always
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

ARGUMENT_SPEC: dict[str, dict[str, object]] = {
    "action": {"type": "str", "choices": ["selftest", "upgrade"], "required": True},
    "config": {"type": "path"},
    "zuul_conf": {"type": "path"},
    "kubeconfig": {"type": "path"},
    "image": {"type": "str"},
    "node": {"type": "str"},
    "all_nodes": {"type": "bool", "default": False},
    "rollback_on_failure": {"type": "bool", "default": False},
    "timeout": {"type": "int"},
    "selftest_timeout": {"type": "int", "default": 300},
    "start_timeout": {"type": "float", "default": 120},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        # node and all_nodes exclude each other by value, checked below: a playbook can then
        # pass all_nodes: false next to a node (AnsibleModule's mutually_exclusive only
        # looks at presence)
        required_if=[("action", "upgrade", ("image", "config"))],
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
    if params["node"] and params["all_nodes"]:
        module.fail_json(msg="parameters are mutually exclusive: node|all_nodes (node picks one "
                         "node, all_nodes every eligible one)")
    log: list[str] = []
    changed = False
    try:
        config = load_config(params["config"])
        if params["action"] == "selftest":
            cluster = Cluster.connect(params["kubeconfig"])
            outcomes = selftest_job.run(
                cluster,
                selftest_job.executor_workload(config),
                image=params["image"],
                node=params["node"],
                all_nodes=params["all_nodes"],
                timeout=min(params["timeout"] or 900, 900),
                start_timeout=params["start_timeout"],
                say=log.append,
            )
            document = json.loads(selftest_job.render_outcomes(outcomes, "json"))
            module.exit_json(changed=False, ok=document["ok"], nodes=document["nodes"], log=log)
        zuul_conf = None
        if params["zuul_conf"]:
            try:
                with open(params["zuul_conf"], "rb") as handle:
                    zuul_conf = handle.read()
            except OSError as exc:
                module.fail_json(msg=f"{params['zuul_conf']}: cannot read zuul.conf: {exc.strerror}")
        # Validates the objects before connecting: nothing is applied when they fail.
        upgrade.checked_objects(config, params["image"], zuul_conf)
        result = upgrade.upgrade(
            Cluster.connect(params["kubeconfig"]),
            config,
            params["image"],
            rollback_on_failure=params["rollback_on_failure"],
            timeout=params["timeout"],
            selftest_timeout=params["selftest_timeout"],
            say=log.append,
            zuul_conf=zuul_conf,
        )
        module.exit_json(changed=result.changed, ok=result.ok, log=log)
    except UserError as exc:
        changed = exc.changed
        module.fail_json(msg="; ".join(str(p) for p in exc.problems), changed=changed, log=log)


if __name__ == "__main__":
    main()

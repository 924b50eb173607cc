#!/usr/bin/python
"""Ansible module: the zuul-k8s-selftest Zuul job through zuul-web, as `zuul-k8s selftest --zuul`."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: zuul_k8s_zuul_selftest
short_description: Run the zuul-k8s-selftest Zuul job through zuul-web and return its reports
description:
  - Enqueues the C(zuul-k8s-selftest) job through zuul-web's REST API with an admin
    token, follows each build and returns its report (checked from inside the
    build's bwrap sandbox) and diagnoses, as C(zuul-k8s selftest --zuul) does.
  - It does not fail on a failed check, so the playbook can assert on the reports;
    bad input (URL, tenant, token, a build that never starts) fails the task.
  - Needs the zuul_k8s package importable by the interpreter that runs the module
    (set C(ansible_python_interpreter) to the kit's Python).
options:
  url:
    description: zuul-web's base URL.
    type: str
    required: true
  tenant:
    description: The Zuul tenant.
    type: str
    required: true
  project:
    description: The project to enqueue (default the project that defines the job).
    type: str
  pipeline:
    description: The pipeline (default the one in which the project runs the job).
    type: str
  token_file:
    description: A file holding the admin token (default the environment variable ZUUL_K8S_TOKEN).
    type: path
  count:
    description: How many builds to run, one after the other.
    type: int
    default: 1
  timeout:
    description: Seconds per build, from enqueue to its end.
    type: int
    default: 300
attributes:
  check_mode:
    support: none
    description: Not supported; it enqueues builds.
  diff_mode:
    support: none
    description: Not supported.
author: zuul-k8s
"""

EXAMPLES = r"""
- name: Self-test from inside a build
  zuul_k8s_zuul_selftest:
    url: https://zuul.example.org
    tenant: example
    token_file: admin.jwt
  register: selftest
"""

RETURN = r"""
ok:
  description: Every build's report passed.
  type: bool
  returned: always
builds:
  description: Per build, its uuid, result, executor, log_url, ok, diagnoses and report.
  type: list
  returned: always
log:
  description: The progress lines the command line would print.
  type: list
  returned: always
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC: dict[str, dict[str, object]] = {
    "url": {"type": "str", "required": True},
    "tenant": {"type": "str", "required": True},
    "project": {"type": "str"},
    "pipeline": {"type": "str"},
    "token_file": {"type": "path"},
    "count": {"type": "int", "default": 1},
    "timeout": {"type": "int", "default": 300},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    try:
        from zuul_k8s.errors import UserError
        from zuul_k8s.selftest import output, zuulweb
        from zuul_k8s.selftest.diagnosis import diagnose
    except ImportError as exc:
        module.fail_json(msg=f"the zuul_k8s package is not importable by {module._name}'s "
                         f"interpreter ({exc}); set ansible_python_interpreter to the kit's Python")
        return
    params = module.params
    log: list[str] = []
    try:
        if params["count"] < 1 or params["timeout"] < 1:
            raise UserError("count and timeout must be 1 or more")
        token = os.environ.get("ZUUL_K8S_TOKEN")
        if params["token_file"]:
            try:
                with open(params["token_file"], encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                raise UserError(f"{params['token_file']}: cannot read the token: {exc.strerror}") from None
        if not token:
            raise UserError("no token: set token_file or ZUUL_K8S_TOKEN")
        module.no_log_values.add(token)
        client = zuulweb.ZuulWeb(params["url"], params["tenant"], token)
        target = zuulweb.resolve(client, params["project"], params["pipeline"])
        builds = zuulweb.run_builds(client, target, params["count"], float(params["timeout"]),
                                    log=log.append)
        missing = [b for b in builds if b.report is None]
        if missing:
            raise UserError(f"build {missing[0].uuid} ended {missing[0].result} without a report")
        results = [{"uuid": b.uuid, "result": b.result, "executor": b.executor,
                    "log_url": b.log_url, **output.as_document(b.report, diagnose(b.report))}
                   for b in builds if b.report is not None]
        module.exit_json(changed=False, ok=all(r["ok"] for r in results), builds=results, log=log)
    except UserError as exc:
        module.fail_json(msg="; ".join(str(p) for p in exc.problems), log=log)


if __name__ == "__main__":
    main()

"""The upgrade journey: canary self-test with the new image, then the new
template, rolled one executor at a time, then a self-test again.

State lives in the cluster, not on the machine that ran the command: an
annotation on the workload records the target image, the image it replaces
and the phase, so a rerun after an interrupt resumes where it stopped and
`--rollback-on-failure` knows what to restore.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.apply import Applied, apply_objects, keep_zuul_conf_checksum, kept_line
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.cluster.rollout import Deadline, default_timeout, ended, follow
from zuul_k8s.config import Config
from zuul_k8s.errors import EXIT_FAILED, Problem, UserError
from zuul_k8s.findings import Finding, Severity
from zuul_k8s.isolation import EXECUTOR_CONTAINER

STATE_ANNOTATION = "zuul-k8s.io/upgrade"


@dataclass(frozen=True)
class State:
    target: str
    previous: str
    phase: str  # rolling | done | rolled-back
    # The live pod template before the upgrade, exactly as the cluster held it: what
    # --rollback-on-failure restores (not a re-render of today's config with the old image).
    template: dict[str, Any] | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"target": self.target, "previous": self.previous,
                                "phase": self.phase}
        if self.template is not None:
            data["template"] = self.template
        return json.dumps(data, sort_keys=True)


def read_state(workload: dict[str, Any]) -> State | None:
    text = (workload["metadata"].get("annotations") or {}).get(STATE_ANNOTATION)
    try:
        data = json.loads(text) if text else None
        if not data:
            return None
        template = data.get("template")
        return State(data["target"], data["previous"], data["phase"],
                     template if isinstance(template, dict) else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class Upgraded:
    """What `upgrade` did: ok (the executors run the image and pass the self-test) and
    changed (some object in the cluster is not as it was before)."""

    ok: bool
    changed: bool


class InvalidObjects(UserError):
    """The objects the upgrade would apply fail validation: nothing was touched (exit 1)."""

    exit_code = EXIT_FAILED

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        errors = [f for f in findings if f.severity is Severity.ERROR]
        super().__init__(
            [Problem(f"{f.kind}/{f.name}", f.path, f"{f.message} [{f.source}/{f.rule}]")
             for f in errors]
            + [Problem("zuul-k8s", "", f"refusing to touch the cluster: {len(errors)} error(s) "
                       "in the rendered objects")])


def live_image(workload: dict[str, Any]) -> str:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return str(next(c for c in containers if c.get("name") == EXECUTOR_CONTAINER)["image"])


def with_image(config: Config, image: str) -> Config:
    return Config(config.source, {**config.data, "image": image})


def checked_objects(config: Config, image: str, zuul_conf: bytes | None = None,
                    parsed: Any = None) -> list[dict[str, Any]]:
    """The objects the upgrade applies, validated as `apply` validates them (schema, the
    isolation contract, Pod Security, and the zuul.conf given, `parsed`: zuulconf.ZuulConf);
    InvalidObjects before anything touches the cluster."""
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate
    from zuul_k8s.validate.admission import Target

    upgraded = with_image(config, image)
    objects = render(upgraded, zuul_conf)
    findings = validate(objects, Target(minor=upgraded.target_minor,
                                        level=upgraded["kubernetes"]["podSecurityLevel"]), parsed)
    if any(f.severity is Severity.ERROR for f in findings):
        raise InvalidObjects(findings)
    return objects


def objects_for(config: Config, image: str, state: State, zuul_conf: bytes | None = None,
                live: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The config's objects with `image`, the workload carrying the upgrade state; without
    a zuul.conf, the checksum annotation `live` has is kept (apply.keep_zuul_conf_checksum)."""
    from zuul_k8s.render import render

    objects = render(with_image(config, image), zuul_conf)
    if zuul_conf is None:
        keep_zuul_conf_checksum(objects, live)
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            obj["metadata"].setdefault("annotations", {})[STATE_ANNOTATION] = state.encode()
    return objects


def _selftest(cluster: Cluster, workload: dict[str, Any], image: str | None, what: str,
              say: Callable[[str], None], timeout: int) -> list[selftest_job.Outcome]:
    say(f"{what}: self-test with image {image or live_image(workload)}")
    outcomes = selftest_job.run(cluster, workload, image=image, timeout=timeout, say=say)
    say(selftest_job.render_outcomes(outcomes).rstrip("\n"))
    return outcomes


def _changed(applied: list[Applied]) -> bool:
    return any(a.action in ("created", "configured") for a in applied)


def _roll_back(cluster: Cluster, config: Config, state: State, say: Callable[[str], None],
               deadline: Deadline, zuul_conf: bytes | None,
               live: dict[str, Any] | None) -> bool:
    back = State(state.target, state.previous, "rolled-back", state.template)
    objects = objects_for(config, state.previous, back, zuul_conf, live)
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    if state.template is not None:
        say(f"rolling back to the previous pod template (image {state.previous})")
        workload["spec"]["template"] = copy.deepcopy(state.template)
    else:  # a state written before the template was kept: the best we can do
        say(f"rolling back to {state.previous} (no saved template: today's config with the "
            "previous image)")
    applied = apply_objects(cluster, objects, force=True, report=lambda a: say(a.line(False)))
    result = follow(cluster, _workload(applied), say, timeout=deadline)
    if result.draining:
        say(ended(result))
    say(f"rolled back: the executors run {state.previous} again")
    return _changed(applied)


def _workload(applied: list[Any]) -> dict[str, Any]:
    return next(a.obj for a in applied if a.obj["kind"] in ("Deployment", "StatefulSet"))


def upgrade(cluster: Cluster, config: Config, image: str, *, rollback_on_failure: bool = False,
            timeout: float | None = None, selftest_timeout: int = 300,
            say: Callable[[str], None] = print, zuul_conf: bytes | None = None) -> Upgraded:
    """Validate, canary, roll, self-test. ok: the executors run `image` and pass the
    self-test, or its rollout goes on while old executors drain (rerun to follow it).
    A UserError raised after the cluster changed carries `changed = True`.

    `timeout` is the total wall time of the rollouts: the upgrade's, and with
    rollback_on_failure the rollback's, which keeps what the first leaves (the first
    gets half); None: rollout.default_timeout with as many rolls."""
    checked_objects(config, image, zuul_conf)  # InvalidObjects: nothing touched
    from zuul_k8s.render import render

    planned = next(o for o in render(config) if o["kind"] in ("Deployment", "StatefulSet"))
    live = cluster.get(object_path(planned))
    if live is None:
        raise UserError(Problem(ref(planned), "", "is not installed; run `zuul-k8s apply` first"))
    state = read_state(live)
    current = live_image(live)
    rolls = 2 if rollback_on_failure else 1
    total = timeout if timeout is not None else default_timeout(planned, live, rolls)
    if state and state.target == image and state.phase == "rolling":
        say(f"resuming the upgrade to {image} (from {state.previous}; its canary passed before)")
    elif current == image and (state is None or state.phase == "done"):
        say(f"the executors already run {image}: nothing to do")
        return Upgraded(ok=True, changed=False)
    else:
        canary = _selftest(cluster, planned, image, "canary", say, selftest_timeout)
        if not all(o.ok for o in canary):
            say(f"canary failed: the executors were not changed and still run {current}")
            return Upgraded(ok=False, changed=False)
        state = State(image, current, "rolling", copy.deepcopy(live["spec"]["template"]))
    report: list[Applied] = []

    def show(result: Applied) -> None:
        report.append(result)
        say(result.line(False))

    if zuul_conf is None:
        kept = keep_zuul_conf_checksum(render(config), live)
        if kept:
            say(kept_line(kept))
    say(f"waiting up to {total:g}s for the rollout"
        + (f"s ({rolls} rolls: this one gets half, a rollback the rest)" if rolls > 1 else "")
        + (" (--timeout)" if timeout is not None else
           " (rolls x replicas x (gracefulStopSeconds + 300) + 300; --timeout to change)"))
    budget = Deadline.after(total)
    try:
        applied = apply_objects(cluster, objects_for(config, image, state, zuul_conf, live),
                                report=show)
    except UserError as exc:  # refused part-way: report what did change, no rollback
        exc.changed = _changed(report)
        raise
    changed = _changed(applied)
    try:
        workload = _workload(applied)
        result = follow(cluster, workload, say, timeout=budget.share(rolls))
        if result.draining:
            say(ended(result))
        if not result.complete:  # a StatefulSet replaces the rest as each drain ends
            say(f"the upgrade to {image} goes on in the cluster: rerun the same command to "
                "follow it and run the self-test after")
            return Upgraded(ok=True, changed=True)
        after = _selftest(cluster, workload, None, "after the upgrade", say, selftest_timeout)
        if not all(o.ok for o in after):
            raise UserError(Problem(ref(workload), "", f"the self-test failed with {image} "
                                    "after the rollout"))
    except UserError as exc:
        if not rollback_on_failure:
            exc.changed = True  # the new template is applied
            raise
        for problem in exc.problems:
            say(f"error: {problem}")
        try:
            _roll_back(cluster, config, state, say, budget, zuul_conf, live)
        except UserError as failed:
            failed.changed = True
            raise
        return Upgraded(ok=False, changed=True)
    done = State(image, state.previous, "done")
    changed = _changed(apply_objects(cluster, objects_for(config, image, done, zuul_conf,
                                                          live))) or changed
    say(f"upgraded: the executors run {image} and pass the self-test")
    return Upgraded(ok=True, changed=changed)

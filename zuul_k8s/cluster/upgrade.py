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
from zuul_k8s.cluster.apply import Applied, apply_objects
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.cluster.rollout import follow
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


def checked_objects(config: Config, image: str,
                    zuul_conf: bytes | None = None) -> list[dict[str, Any]]:
    """The objects the upgrade applies, validated as `apply` validates them (schema, the
    isolation contract, Pod Security); InvalidObjects before anything touches the cluster."""
    from zuul_k8s.render import render
    from zuul_k8s.validate import validate
    from zuul_k8s.validate.admission import Target

    upgraded = with_image(config, image)
    objects = render(upgraded, zuul_conf)
    findings = validate(objects, Target(minor=upgraded.target_minor,
                                        level=upgraded["kubernetes"]["podSecurityLevel"]))
    if any(f.severity is Severity.ERROR for f in findings):
        raise InvalidObjects(findings)
    return objects


def objects_for(config: Config, image: str, state: State,
                zuul_conf: bytes | None = None) -> list[dict[str, Any]]:
    """The config's objects with `image`, the workload carrying the upgrade state."""
    from zuul_k8s.render import render

    objects = render(with_image(config, image), zuul_conf)
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
               timeout: float, zuul_conf: bytes | None) -> bool:
    back = State(state.target, state.previous, "rolled-back", state.template)
    objects = objects_for(config, state.previous, back, zuul_conf)
    workload = next(o for o in objects if o["kind"] in ("Deployment", "StatefulSet"))
    if state.template is not None:
        say(f"rolling back to the previous pod template (image {state.previous})")
        workload["spec"]["template"] = copy.deepcopy(state.template)
    else:  # a state written before the template was kept: the best we can do
        say(f"rolling back to {state.previous} (no saved template: today's config with the "
            "previous image)")
    applied = apply_objects(cluster, objects, force=True, report=lambda a: say(a.line(False)))
    follow(cluster, _workload(applied), say, timeout=timeout)
    say(f"rolled back: the executors run {state.previous} again")
    return _changed(applied)


def _workload(applied: list[Any]) -> dict[str, Any]:
    return next(a.obj for a in applied if a.obj["kind"] in ("Deployment", "StatefulSet"))


def upgrade(cluster: Cluster, config: Config, image: str, *, rollback_on_failure: bool = False,
            timeout: float = 900, selftest_timeout: int = 300,
            say: Callable[[str], None] = print, zuul_conf: bytes | None = None) -> Upgraded:
    """Validate, canary, roll, self-test. ok: the executors run `image` and pass the
    self-test. A UserError raised after the cluster changed carries `changed = True`."""
    checked_objects(config, image, zuul_conf)  # InvalidObjects: nothing touched
    from zuul_k8s.render import render

    planned = next(o for o in render(config) if o["kind"] in ("Deployment", "StatefulSet"))
    live = cluster.get(object_path(planned))
    if live is None:
        raise UserError(Problem(ref(planned), "", "is not installed; run `zuul-k8s apply` first"))
    state = read_state(live)
    current = live_image(live)
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

    try:
        applied = apply_objects(cluster, objects_for(config, image, state, zuul_conf), report=show)
    except UserError as exc:  # refused part-way: report what did change, no rollback
        exc.changed = _changed(report)
        raise
    changed = _changed(applied)
    try:
        workload = _workload(applied)
        follow(cluster, workload, say, timeout=timeout)
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
            _roll_back(cluster, config, state, say, timeout, zuul_conf)
        except UserError as failed:
            failed.changed = True
            raise
        return Upgraded(ok=False, changed=True)
    done = State(image, state.previous, "done")
    changed = _changed(apply_objects(cluster, objects_for(config, image, done, zuul_conf))) or changed
    say(f"upgraded: the executors run {image} and pass the self-test")
    return Upgraded(ok=True, changed=changed)

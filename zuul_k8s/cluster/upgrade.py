"""The upgrade journey: canary self-test with the new image, then the new
template, rolled one executor at a time, then a self-test again.

State lives in the cluster, not on the machine that ran the command: an
annotation on the workload records the target image, the image it replaces
and the phase, so a rerun after an interrupt resumes where it stopped and
`--rollback-on-failure` knows what to restore.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.cluster import selftest_job
from zuul_k8s.cluster.apply import apply_objects
from zuul_k8s.cluster.client import Cluster
from zuul_k8s.cluster.resources import object_path, ref
from zuul_k8s.cluster.rollout import follow
from zuul_k8s.config import Config
from zuul_k8s.errors import Problem, UserError
from zuul_k8s.isolation import EXECUTOR_CONTAINER

STATE_ANNOTATION = "zuul-k8s.io/upgrade"


@dataclass(frozen=True)
class State:
    target: str
    previous: str
    phase: str  # rolling | done | rolled-back

    def encode(self) -> str:
        return json.dumps({"target": self.target, "previous": self.previous, "phase": self.phase},
                          sort_keys=True)


def read_state(workload: dict[str, Any]) -> State | None:
    text = (workload["metadata"].get("annotations") or {}).get(STATE_ANNOTATION)
    try:
        data = json.loads(text) if text else None
        return State(data["target"], data["previous"], data["phase"]) if data else None
    except (ValueError, KeyError, TypeError):
        return None


def live_image(workload: dict[str, Any]) -> str:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return str(next(c for c in containers if c.get("name") == EXECUTOR_CONTAINER)["image"])


def with_image(config: Config, image: str) -> Config:
    return Config(config.source, {**config.data, "image": image})


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


def _roll_back(cluster: Cluster, config: Config, state: State, say: Callable[[str], None],
               timeout: float, zuul_conf: bytes | None) -> None:
    say(f"rolling back to {state.previous}")
    back = State(state.target, state.previous, "rolled-back")
    applied = apply_objects(cluster, objects_for(config, state.previous, back, zuul_conf),
                            force=True, report=lambda a: say(a.line(False)))
    follow(cluster, _workload(applied), say, timeout=timeout)
    say(f"rolled back: the executors run {state.previous} again")


def _workload(applied: list[Any]) -> dict[str, Any]:
    return next(a.obj for a in applied if a.obj["kind"] in ("Deployment", "StatefulSet"))


def upgrade(cluster: Cluster, config: Config, image: str, *, rollback_on_failure: bool = False,
            timeout: float = 900, selftest_timeout: int = 300,
            say: Callable[[str], None] = print, zuul_conf: bytes | None = None) -> bool:
    """True when the executors run `image` and pass the self-test."""
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
        return True
    else:
        canary = _selftest(cluster, planned, image, "canary", say, selftest_timeout)
        if not all(o.ok for o in canary):
            say(f"canary failed: the executors were not changed and still run {current}")
            return False
        state = State(image, current, "rolling")
    applied = apply_objects(cluster, objects_for(config, image, state, zuul_conf),
                            report=lambda a: say(a.line(False)))
    workload = _workload(applied)
    try:
        follow(cluster, workload, say, timeout=timeout)
        after = _selftest(cluster, workload, None, "after the upgrade", say, selftest_timeout)
        if not all(o.ok for o in after):
            raise UserError(Problem(ref(workload), "", f"the self-test failed with {image} "
                                    "after the rollout"))
    except UserError as exc:
        if not rollback_on_failure:
            raise
        for problem in exc.problems:
            say(f"error: {problem}")
        _roll_back(cluster, config, state, say, timeout, zuul_conf)
        return False
    done = State(image, state.previous, "done")
    apply_objects(cluster, objects_for(config, image, done, zuul_conf))
    say(f"upgraded: the executors run {image} and pass the self-test")
    return True

"""zuul-web's REST API, as far as the self-test job needs it: enqueue, follow, fetch the report.

Endpoints and their auth as zuul-web 14.3.0 serves them (zuul/web/__init__.py):
`GET /api/tenant/{t}/project/{p}` (the project's pipelines and jobs; 404
"Unknown tenant" / "Unknown project"), `POST .../project/{p}/enqueue` (admin:
a bearer JWT the `[auth ...]` sections accept and the tenant's admin-rules
match; routed only when zuul-web has an auth section; returns true, no id),
`GET /api/tenant/{t}/builds?job_name&project&pipeline&idx_min` (builds are
recorded when they start; `_id` grows) and `GET .../build/{uuid}` (result,
log_url, artifacts with their metadata). The report travels as the metadata
of the artifact the job returns with zuul_return.

Every failure becomes a UserError that says what was asked, what zuul-web
answered and what to do; the token is sent, never shown.
"""

from __future__ import annotations

import html
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zuul_k8s.errors import UserError
from zuul_k8s.selftest import report as report_module
from zuul_k8s.selftest.jobcheck import ARTIFACT_NAME
from zuul_k8s.zuuljob import JOB_NAME

REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Build:
    """One finished build of the job and the report it returned (None when it returned none)."""

    uuid: str
    result: str
    log_url: str | None
    report: dict[str, Any] | None
    executor: str | None
    error_detail: str | None = None


def _short(body: bytes) -> str:
    """zuul-web's own words in an error answer: JSON's description, or CherryPy's HTML <p>."""
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        # CherryPy's error page: <h2>404 Not Found</h2> <p>Unknown tenant</p>
        match = re.search(r"<p>(.*?)</p>", text, re.S)
        return (html.unescape(match.group(1)).strip() if match else text)[:200]
    if isinstance(data, dict):
        return str(data.get("description") or data.get("message") or data)[:200]
    return str(data)[:200]


class ZuulWeb:
    """A client for one tenant of one zuul-web."""

    def __init__(self, url: str, tenant: str, token: str | None = None,
                 timeout: float = REQUEST_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"--zuul {url!r}: not an http(s) URL; give zuul-web's base URL, "
                            "e.g. https://zuul.example.org")
        self.url = url.rstrip("/")
        self.tenant = tenant
        self._token = token
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        # No proxy from the environment for a loopback zuul-web; others use the environment's.
        self._opener = urllib.request.build_opener()

    def _tenant_path(self, *parts: str) -> str:
        quoted = [urllib.parse.quote(part, safe="/") for part in parts]
        return "/api/tenant/" + urllib.parse.quote(self.tenant, safe="") + "/" + "/".join(quoted)

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                auth: bool = False) -> Any:
        """The JSON answer of one request; every failure a UserError naming the request."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        what = f"{method} {url}"
        try:
            with self._opener.open(urllib.request.Request(url, data=data, headers=headers,
                                                          method=method),
                                   timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(what, exc.code, exc.read(), path) from None
        except urllib.error.URLError as exc:
            raise UserError(f"cannot reach zuul-web: {what}: {exc.reason}; check --zuul "
                            "(zuul-web's base URL)") from None
        except (OSError, ValueError) as exc:  # timeouts, resets, bad URLs
            raise UserError(f"cannot reach zuul-web: {what}: {exc}; check --zuul") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise UserError(f"{what} answered, but not with JSON ({_short(raw)!r}): is --zuul "
                            "zuul-web's base URL (the one whose /api/info answers)?") from None

    def _http_error(self, what: str, code: int, body: bytes, path: str) -> UserError:
        said = _short(body)
        if code == 401:
            return UserError(f"{what}: zuul-web refused the token (401 {said}); pass a valid "
                             "token for this zuul-web's [auth ...] section with --token-file or "
                             "ZUUL_K8S_TOKEN (expired? wrong issuer, audience or secret?)")
        if code == 403:
            return UserError(f"{what}: the token is not an admin of tenant {self.tenant} (403 "
                             f"{said}); the tenant's admin-rules must match its claims")
        if code == 404 and "Unknown tenant" in said:
            return UserError(f"tenant {self.tenant!r} does not exist at {self.url} (404); check "
                             "--tenant")
        if code == 404 and "Unknown project" in said:
            return UserError(f"{what}: tenant {self.tenant} has no such project (404); check "
                             "--project (its name as zuul-web lists it)")
        if code == 404 and "Job not found" in said:
            return UserError(f"tenant {self.tenant} has no job {JOB_NAME} (404): add it to an "
                             "untrusted project (`zuul-k8s selftest --write-job DIR` writes its "
                             "files; docs/selftest.md)")
        if code == 404 and path.endswith("/enqueue"):
            return UserError(f"{what}: 404: this zuul-web serves no enqueue API; it routes "
                             "admin actions only when its zuul.conf has an [auth ...] section")
        if code == 404:
            return UserError(f"{what}: 404 {said or 'Not Found'}: is --zuul zuul-web's base URL?")
        return UserError(f"{what}: HTTP {code} {said}")

    # --- the steps ---------------------------------------------------------------

    def project(self, project: str) -> dict[str, Any]:
        answer = self.request("GET", self._tenant_path("project", project))
        if not isinstance(answer, dict):
            raise UserError(f"zuul-web's project answer for {project} is not an object")
        return answer

    def pipelines_running(self, project_info: dict[str, Any], job: str = JOB_NAME) -> list[str]:
        """The pipelines in which the project runs `job`, from its project config."""
        found: list[str] = []
        for config in project_info.get("configs") or []:
            for pipeline in config.get("pipelines") or []:
                names = {variant.get("name") for jobs in pipeline.get("jobs") or []
                         for variant in jobs if isinstance(variant, dict)}
                if job in names and pipeline.get("name") not in found:
                    found.append(pipeline["name"])
        return found

    def last_build_index(self, project: str, pipeline: str, job: str = JOB_NAME) -> int:
        builds = self.request("GET", self._tenant_path("builds"), query={
            "project": project, "pipeline": pipeline, "job_name": job, "limit": 1})
        return max((int(b.get("_id", 0)) for b in builds), default=0) if isinstance(builds, list) else 0

    def enqueue(self, project: str, pipeline: str, branch: str) -> None:
        if not self._token:
            raise UserError("no token: pass --token-file FILE or set ZUUL_K8S_TOKEN (a JWT this "
                            f"zuul-web accepts as an admin of tenant {self.tenant})")
        self.request("POST", self._tenant_path("project", project, "enqueue"),
                     body={"pipeline": pipeline, "ref": f"refs/heads/{branch}"}, auth=True)

    def wait_for_start(self, project: str, pipeline: str, after: int, deadline: float,
                       job: str = JOB_NAME) -> dict[str, Any] | None:
        """The first build of `job` recorded after index `after`; None at the deadline."""
        while True:
            builds = self.request("GET", self._tenant_path("builds"), query={
                "project": project, "pipeline": pipeline, "job_name": job,
                "idx_min": after + 1, "limit": 10})
            if isinstance(builds, list) and builds:
                return min(builds, key=lambda b: int(b.get("_id", 0)))
            if self.clock() > deadline:
                return None
            self.sleep(POLL_SECONDS)

    def waiting_for(self, project: str, pipeline: str, job: str = JOB_NAME) -> str | None:
        """What the queued job waits for, from the tenant's status (e.g. `executor`), if queued."""
        status = self.request("GET", self._tenant_path("status"))
        for each in (status or {}).get("pipelines") or []:
            if each.get("name") != pipeline:
                continue
            for queue in each.get("change_queues") or []:
                for head in queue.get("heads") or []:
                    for item in head:
                        if not any(r.get("project") == project for r in item.get("refs") or []):
                            continue
                        for queued in item.get("jobs") or []:
                            if queued.get("name") == job:
                                return str(queued.get("waiting_status") or "its turn")
        return None

    def dequeue(self, project: str, pipeline: str, branch: str) -> None:
        self.request("POST", self._tenant_path("project", project, "dequeue"),
                     body={"pipeline": pipeline, "ref": f"refs/heads/{branch}"}, auth=True)

    def never_started(self, project: str, pipeline: str, branch: str, job: str = JOB_NAME) -> UserError:
        """Why no build started, and the item taken out again so the next run is not ignored
        (an independent pipeline drops an enqueue of a ref it already holds)."""
        waiting = None
        removed = ""
        try:
            waiting = self.waiting_for(project, pipeline, job)
            if waiting is not None:
                self.dequeue(project, pipeline, branch)
                removed = "; the item was dequeued"
        except UserError as exc:
            removed = f"; dequeuing it failed too ({exc})"
        if waiting == "executor":
            why = "the job waits for an executor: none is running, or none accepts work"
        elif waiting is not None:
            why = f"the job waits for {waiting}"
        else:
            why = ("the item is not in the pipeline: see the scheduler's log for the enqueue "
                   "(was the ref refused?)")
        return UserError(f"no {job} build of {project} started in pipeline {pipeline} before the "
                         f"timeout: {why}{removed}; {self.url}/t/{self.tenant}/status shows the "
                         "queue; pass a larger --timeout to wait longer")

    def wait_for_end(self, uuid: str, deadline: float) -> dict[str, Any]:
        while True:
            build = self.request("GET", self._tenant_path("build", uuid))
            if isinstance(build, dict) and build.get("result") and build.get("end_time"):
                return build
            if self.clock() > deadline:
                raise UserError(f"build {uuid} did not finish before the timeout; follow it at "
                                f"{self.url}/t/{self.tenant}/build/{uuid}, or pass a larger "
                                "--timeout")
            self.sleep(POLL_SECONDS)

    def run_once(self, project: str, pipeline: str, branch: str, timeout: float,
                 log: Callable[[str], None] = lambda _: None) -> Build:
        """Enqueue the job once, follow its build, and return it with its report."""
        deadline = self.clock() + timeout
        after = self.last_build_index(project, pipeline)
        self.enqueue(project, pipeline, branch)
        log(f"enqueued {project} ({branch}) into {pipeline}; waiting for the build to start")
        started = self.wait_for_start(project, pipeline, after, deadline)
        if started is None:
            raise self.never_started(project, pipeline, branch)
        uuid = str(started["uuid"])
        log(f"build {uuid} started; waiting for it to finish")
        return build_from(self.wait_for_end(uuid, deadline), f"build {uuid}")


def build_from(answer: dict[str, Any], source: str) -> Build:
    """A Build from zuul-web's build answer, its report validated when there is one."""
    report = None
    for artifact in answer.get("artifacts") or []:
        if artifact.get("name") == ARTIFACT_NAME:
            metadata = artifact.get("metadata") or {}
            report = report_module.validate(metadata.get("report"), f"{source}'s report")
    executor = None
    if report is not None:
        executor = (report.get("build") or {}).get("executor") or None
    return Build(uuid=str(answer.get("uuid")), result=str(answer.get("result")),
                 log_url=answer.get("log_url"), report=report, executor=executor,
                 error_detail=answer.get("error_detail"))


@dataclass(frozen=True)
class Target:
    """Where the job is enqueued: project, pipeline and branch, as zuul-web knows them."""

    project: str
    pipeline: str
    branch: str


def resolve(client: ZuulWeb, project: str | None, pipeline: str | None) -> Target:
    """Fill in the project (the one defining the job) and the pipeline (the one running it)."""
    if project is None:
        variants = client.request("GET", client._tenant_path("job", JOB_NAME))
        contexts = [v.get("source_context") or {} for v in variants or [] if isinstance(v, dict)]
        projects = [c.get("project") for c in contexts if c.get("project")]
        if not projects:
            raise UserError(f"tenant {client.tenant} has no job {JOB_NAME}: add it to a project "
                            "(`zuul-k8s selftest --write-job DIR` writes its files), or pass "
                            "--project")
        project = projects[0]
    info = client.project(project)
    running = client.pipelines_running(info)
    if pipeline is None:
        if len(running) != 1:
            raise UserError(
                f"project {project} runs {JOB_NAME} in "
                + (f"{len(running)} pipelines ({', '.join(running)}): pass --pipeline"
                   if running else "no pipeline: add it to a pipeline of the project's "
                   "`- project:` stanza (docs/selftest.md shows one)"))
        pipeline = running[0]
    elif pipeline not in running:
        raise UserError(f"project {project} does not run {JOB_NAME} in pipeline {pipeline}"
                        + (f" (it does in: {', '.join(running)})" if running else
                           ": add the job to that pipeline of the project's `- project:` stanza"))
    branch = str((info.get("metadata") or {}).get("default_branch") or "master")
    return Target(project, pipeline, branch)


def run_builds(client: ZuulWeb, target: Target, count: int, timeout: float,
               log: Callable[[str], None] = lambda _: None) -> list[Build]:
    """`count` builds one after the other (a pipeline holds one item per ref), each with its report."""
    builds = []
    for number in range(1, count + 1):
        if count > 1:
            log(f"build {number} of {count}")
        builds.append(client.run_once(target.project, target.pipeline, target.branch, timeout,
                                      log=log))
    return builds

"""The zuul-k8s-selftest Zuul job, as the files a Zuul project holds.

The job's YAML lives here as package data (zuul.d/, playbooks/); its run
playbook runs the checker (selftest/jobcheck.py) with the probe it shares its
checks with (selftest/probe.py) from `files/` beside it. `files()` puts the
two together, so the checker exists once in the package and the directory a
user copies into a project is complete: `zuul-k8s selftest --write-job DIR`.
"""

from __future__ import annotations

from pathlib import Path

from zuul_k8s.errors import Problem, UserError
from zuul_k8s.selftest import PROBE_PATH

JOB_NAME = "zuul-k8s-selftest"
HERE = Path(__file__).resolve().parent
CHECKER_PATH = PROBE_PATH.with_name("jobcheck.py")
JOB_FILE = "zuul.d/zuul-k8s-selftest.yaml"
PLAYBOOK = "playbooks/zuul-k8s-selftest/run.yaml"
FILES_DIR = "playbooks/zuul-k8s-selftest/files"


def files() -> dict[str, bytes]:
    """Relative path -> content of every file of the job, as a project holds them."""
    found = {
        JOB_FILE: (HERE / JOB_FILE).read_bytes(),
        PLAYBOOK: (HERE / PLAYBOOK).read_bytes(),
        f"{FILES_DIR}/jobcheck.py": CHECKER_PATH.read_bytes(),
        f"{FILES_DIR}/probe.py": PROBE_PATH.read_bytes(),
    }
    return found


def write(directory: Path, force: bool = False) -> list[Path]:
    """Writes the job's files below `directory`; refuses to overwrite different files unless forced."""
    wanted = files()
    clashes = [name for name, content in wanted.items()
               if (directory / name).exists() and (directory / name).read_bytes() != content]
    if clashes and not force:
        raise UserError([Problem(str(directory / name), "", "exists with other content; pass "
                                 "--force to overwrite it, or choose another directory")
                         for name in clashes])
    written = []
    for name, content in wanted.items():
        path = directory / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except OSError as exc:
            raise UserError(Problem(str(path), "", f"cannot write it: {exc.strerror}")) from None
        written.append(path)
    return written

"""Errors a user can cause and fix: printed as clear messages, never as tracebacks."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # checks ran and something failed
EXIT_USAGE = 2  # bad command line, config or input file


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input, located as FILE:PATH."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class UserError(Exception):
    """Bad input: the CLI prints every problem, one per line, and exits 2."""

    exit_code = EXIT_USAGE
    # Whether the cluster was already changed when the error arose (an upgrade refused
    # part-way): what the Ansible module reports as `changed`.
    changed = False

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("zuul-k8s", "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def dotted(path: list[str | int] | tuple[str | int, ...]) -> str:
    """`['spec', 'containers', 0, 'image']` -> `spec.containers[0].image`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

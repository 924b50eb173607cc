"""Reading zuul.conf the way Zuul 14 reads it, without ever showing a value.

Zuul (zuul/cmd/__init__.py, `ZuulApp.readConfig`, 14.3.0) builds
`configparser.ConfigParser(safe_env)`, safe_env being every environment
variable whose name starts with `ZUUL_`, and reads the file with it: strict (a
repeated section or option is an error), `=` or `:` between key and value,
comments only on their own line (`key = 1  # x` keeps the `# x`), and basic
interpolation, so `%(ZUUL_NAME)s` is that variable's value (names are
case-insensitive) and a `%` that is neither `%%` nor `%(name)s` fails when Zuul
reads the value. zuul.conf holds passwords and tokens, and configparser's own
messages quote the offending line or value: every error here is rebuilt from
line numbers and names only.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from zuul_k8s.errors import Problem, UserError

ENV_PREFIX = "ZUUL_"  # zuul/cmd/__init__.py readConfig: only these variables reach the parser
REFERENCE = re.compile(r"%\(([^)]*)\)s")
# Stands for an environment value the pod only knows at run time (fieldRef, secretKeyRef, $(VAR)).
UNKNOWN = "\x00"


@dataclass(frozen=True)
class Lookup:
    """A value as Zuul would read it: `text` (None when unset), or why reading it fails."""

    text: str | None
    problem: str | None = None
    unknown_env: tuple[str, ...] = ()  # variables whose run-time value the text depends on
    missing_env: str = ""  # the ZUUL_ variable the process lacks, when that is the problem

    @property
    def known(self) -> bool:
        return self.problem is None and not self.unknown_env


@dataclass(frozen=True)
class ZuulConf:
    """A zuul.conf that configparser accepts; values are read per environment (a pod's)."""

    file: str  # as the user named it, for messages
    text: str

    def parser(self, env: Mapping[str, str]) -> configparser.ConfigParser:
        """The parser Zuul builds in a process with environment `env`."""
        safe_env = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        parser = configparser.ConfigParser(safe_env)
        parser.read_string(self.text, source=self.file)
        return parser

    @cached_property
    def _plain(self) -> configparser.ConfigParser:
        return self.parser({})

    def sections(self) -> list[str]:
        return self._plain.sections()

    def options(self, section: str) -> list[str]:
        """The section's own options (lowercased, as configparser stores them), not [DEFAULT]'s."""
        if not self._plain.has_section(section):
            return []
        defaults = self._plain.defaults()
        return [key for key in self._plain[section] if key not in defaults]

    def raw(self, section: str, key: str) -> str | None:
        if not self._plain.has_option(section, key):
            return None
        return self._plain.get(section, key, raw=True)


def load(data: bytes, file: str) -> ZuulConf:
    """The zuul.conf in `data`, or UserError (exit 2) naming the line, never its content."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(Problem(file, f"line {line}", "is not UTF-8; fix: save zuul.conf as UTF-8")) from None
    try:
        configparser.ConfigParser().read_string(text, source=file)
    except configparser.Error as exc:
        raise UserError(_problem(file, exc)) from None
    return ZuulConf(file, text)


def read(path: str) -> tuple[bytes, ZuulConf]:
    """(the file's bytes, for the checksum; the parsed zuul.conf), or UserError."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UserError(Problem(path, "", f"cannot read zuul.conf: {exc.strerror}")) from None
    return data, load(data, path)


def _problem(file: str, exc: configparser.Error) -> Problem:
    """configparser's error, told with line numbers and names only (its message quotes the line)."""
    fix = "fix: Zuul reads zuul.conf with Python's configparser"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return Problem(file, f"line {exc.lineno}", "a key before the first [section]; "
                       f"{fix}: every key belongs to a section such as [executor]")
    if isinstance(exc, configparser.DuplicateSectionError):
        return Problem(file, f"line {exc.lineno}", f"section [{exc.section}] appears twice; "
                       f"{fix} (strict): merge the two")
    if isinstance(exc, configparser.DuplicateOptionError):
        return Problem(file, f"line {exc.lineno}", f"{exc.section}.{exc.option} is set twice; "
                       f"{fix} (strict): keep one")
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        return Problem(file, f"line {lines}", "is neither `key = value`, a [section] nor a comment; "
                       f"{fix}: give each key a value, or start the line with # to comment it out")
    return Problem(file, "", f"cannot be read as configparser reads it ({type(exc).__name__}); {fix}")


def syntax_problem(raw: str) -> str | None:
    """Why basic interpolation refuses `raw` (a `%` that is not `%%` or `%(name)s`), or None."""
    rest = raw
    while "%" in rest:
        rest = rest[rest.index("%"):]
        if rest.startswith("%%"):
            rest = rest[2:]
        elif (match := REFERENCE.match(rest)) is not None:
            rest = rest[match.end():]
        else:
            return ("has a `%` that is neither `%%` (a literal percent sign) nor `%(ZUUL_NAME)s`: "
                    "Zuul fails reading it")
    return None


def references(raw: str) -> list[str]:
    """The names `%(name)s` refers to, as written."""
    return REFERENCE.findall(raw)


def lookup(parser: configparser.ConfigParser, section: str, key: str, defined_env: set[str]) -> Lookup:
    """The value Zuul reads for section.key, interpolated with the parser's environment.

    `defined_env`: the ZUUL_ variables the process has, lowercased; a reference to another
    is a missing variable, not a missing option. Values standing for run-time environment
    (UNKNOWN marks) come back with the variables they depend on.
    """
    if not parser.has_option(section, key):
        return Lookup(None)
    raw = parser.get(section, key, raw=True)
    problem = syntax_problem(raw)
    if problem:
        return Lookup(None, problem)
    try:
        text = parser.get(section, key)
    except configparser.InterpolationMissingOptionError as exc:
        name = _as_written(raw, exc.reference)
        if name.upper().startswith(ENV_PREFIX) and exc.reference not in defined_env:
            return Lookup(None, f"refers to the environment variable {name}, which the executor "
                          "container does not set: Zuul fails reading it", missing_env=name)
        return Lookup(None, f"refers to %({name})s, which is neither an option of [{section}] nor "
                      "an environment variable ZUUL_*: Zuul fails reading it")
    except configparser.InterpolationDepthError:
        return Lookup(None, "nests %(...)s references too deeply (a loop?): Zuul fails reading it")
    except configparser.InterpolationError:
        return Lookup(None, "cannot be interpolated: Zuul fails reading it")
    unknown = tuple(sorted({_as_written(raw, n.lower()) for n in references(raw)
                            if UNKNOWN in (parser.get(section, n.lower(), fallback="") or "")}))
    if UNKNOWN in text and not unknown:  # reached through an option that refers to the variable
        unknown = ("ZUUL_*",)
    return Lookup(text, None, unknown)


def _as_written(raw: str, lowered: str) -> str:
    """The reference as the file spells it (configparser lowercases names)."""
    for name in references(raw):
        if name.lower() == lowered:
            return name
    return lowered

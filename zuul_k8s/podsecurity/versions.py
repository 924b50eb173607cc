"""Pod Security levels and policy versions, as a namespace label spells them.

The policy version names the Kubernetes minor release whose rules apply
(`pod-security.kubernetes.io/enforce-version`). Only the minor number matters:
every check variant is keyed by it. Source: pod-security-admission `api`
package (ParseVersion, LevelPrivileged/Baseline/Restricted), as described in
shared/spec/pod-security.md sections 2.1 and 2.2.
"""

from __future__ import annotations

import re

PRIVILEGED = "privileged"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)

LATEST = "latest"
_VERSION = re.compile(r"v1\.(0|[1-9][0-9]*)")


class PolicyError(ValueError):
    """A level or version that Pod Security Admission would not accept."""


def parse_level(text: object) -> str:
    if text not in LEVELS:
        raise PolicyError(
            f"unknown Pod Security level {text!r}; expected one of {', '.join(LEVELS)}"
        )
    return str(text)


def parse_version(text: object) -> int | None:
    """The minor number of `v1.<minor>`, or None for `latest`."""
    if text == LATEST:
        return None
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise PolicyError(
            f"unknown Pod Security version {text!r}; expected 'latest' or 'v1.<minor>', "
            "e.g. v1.35 (no leading zeros)"
        )
    return int(match.group(1))


def effective_minor(text: object, ceiling: int) -> int:
    """The minor version whose rules apply: `latest`, and anything newer than
    the newest rules known, mean the newest rules (spec 2.2)."""
    minor = parse_version(text)
    return ceiling if minor is None else min(minor, ceiling)


def format_version(minor: int) -> str:
    return f"v1.{minor}"


def label_minor(text: object, ceiling: int) -> int:
    """The minor version a namespace's `pod-security.kubernetes.io/<mode>-version` label
    means, capped at `ceiling` (the cluster's version): as effective_minor, except that
    an invalid value (`v1.035`, `1.35`, `v1.x`) means `latest`, as upstream reads the
    label (spec 2.2: any other string is an error, and upstream then uses latest)."""
    try:
        return effective_minor(text, ceiling)
    except PolicyError:
        return ceiling

"""Pod Security Admission, offline: would a namespace at this level and policy
version admit this manifest? A small exact engine over one table of checks."""

from zuul_k8s.podsecurity.advice import findings
from zuul_k8s.podsecurity.evaluate import Denial, Verdict, evaluate_object, evaluate_pod
from zuul_k8s.podsecurity.registry import CEILING, CHECKS, RELAXATIONS, admitted_from
from zuul_k8s.podsecurity.versions import LATEST, LEVELS, PolicyError

__all__ = [
    "CEILING",
    "CHECKS",
    "LATEST",
    "LEVELS",
    "RELAXATIONS",
    "Denial",
    "PolicyError",
    "Verdict",
    "admitted_from",
    "evaluate_object",
    "evaluate_pod",
    "findings",
]

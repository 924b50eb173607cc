"""The slim Python base the kit's image is built on in tests, made from Debian packages.

The Containerfile's default base (python:3.11-slim-bookworm) cannot be pulled
here, so the tests build a stand-in with the same shape: Debian bookworm, a
Python 3.11 whose `python3 -m venv` brings pip (python3-venv carries ensurepip's
wheels), and `useradd` (passwd is part of every minbase). The builder of
tests/runtime/images.py does the work and its recipe hash caches the result.
"""

from __future__ import annotations

from tests.runtime.images import Recipe, build

KIT_BASE = Recipe("zuul-k8s-kit-base", "bookworm", ("python3", "python3-venv"))


def base_image() -> str:
    """The base image's tag, built on the first call on a machine."""
    return build(KIT_BASE)


if __name__ == "__main__":  # build the base ahead of a test session
    print(base_image())

"""Build what the test session needs before it starts, and say how long each step took
(.ci/run's log shows these times; a warm cache makes each step a few seconds).

    python -m tests.prebuild go       # the Kubernetes, KWOK, containerd and runc binaries
    python -m tests.prebuild images   # the runtime tests' images, Zuul's venv, the executor image

.ci/run runs the two side by side: the Go builds use the CPUs, the image builds
mostly wait on debootstrap and pip downloads.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _go() -> list[tuple[str, Callable[[], object]]]:
    from tests.k8s import build, node  # noqa: F401  (node registers containerd, runc, pause)

    return [(f"go build {name}", lambda name=name: build.binary(name)) for name in build.TARGETS]


def _images() -> list[tuple[str, Callable[[], object]]]:
    from tests.e2e import image, zuulvenv
    from tests.runtime import images
    from tests.runtime.podman_conf import write_containers_conf

    conf = Path(os.environ.get("TMPDIR", "/tmp")) / "zuul-k8s-prebuild"
    conf.mkdir(exist_ok=True)
    os.environ.setdefault("CONTAINERS_CONF", str(write_containers_conf(conf)))
    return [
        ("runtime base image", lambda: images.build(images.BASE)),
        ("runtime zuul image", lambda: images.build(images.ZUUL)),
        ("zuul venv", zuulvenv.ensure),
        ("e2e executor image", image.build),
    ]


STEPS: dict[str, Callable[[], list[tuple[str, Callable[[], object]]]]] = {"go": _go, "images": _images}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m tests.prebuild {'|'.join(STEPS)}", file=sys.stderr)
        return 2
    total = time.monotonic()
    for label, step in STEPS[argv[0]]():
        started = time.monotonic()
        step()
        print(f"prebuild: {label}: {time.monotonic() - started:.0f} s", flush=True)
    print(f"prebuild: {argv[0]} total: {time.monotonic() - total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

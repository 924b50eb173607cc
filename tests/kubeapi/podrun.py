"""Job pods run for real: the pod's settings become podman flags through the
same translation as `selftest --local` (zuul_k8s.selftest.podman), its
ConfigMap volumes become files bind-mounted read-only, and the container's
stdout becomes the pod's log."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from zuul_k8s.profiles import seccomp_root
from zuul_k8s.selftest.local import host_lsms
from zuul_k8s.selftest.podman import Options, translate
from zuul_k8s.workloads import pod_template


class Run:
    """One container: poll() for its exit code, output() for its stdout so far."""

    def __init__(self, argv: list[str], name: str, workdir: Path) -> None:
        self.name, self.workdir = name, workdir
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.stdout = b""
        self.stderr = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        out, err = self.process.communicate()
        self.stdout, self.stderr = out, err

    def poll(self) -> int | None:
        if self.reader.is_alive():
            return None
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.process.returncode

    def output(self) -> str:
        return self.stdout.decode(errors="replace")

    def kill(self) -> None:
        subprocess.run(["podman", "rm", "--force", "--ignore", "--time", "0", self.name],
                       capture_output=True, check=False)
        self.reader.join(timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)


class PodmanRunner:
    """What the double's kubelet calls for Job pods."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @staticmethod
    def has_image(image: str) -> bool:
        return subprocess.run(["podman", "image", "exists", image],
                              capture_output=True).returncode == 0

    def start(self, api: Any, pod: dict[str, Any]) -> Run:
        namespace = pod["metadata"]["namespace"]
        template = pod_template(pod)
        assert template is not None
        container = pod["spec"]["containers"][0]
        apparmor, selinux = host_lsms()
        options = Options(runtime="containerd", seccomp_root=seccomp_root(),
                          host_apparmor=apparmor, host_selinux=selinux)
        translation = translate(template, ("spec", "containers", 0), container, options,
                                f"pod {pod['metadata']['name']}")
        workdir = Path(tempfile.mkdtemp(prefix="kubeapi-pod-"))
        mounts = []
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                cm = api.find("ConfigMap", namespace, volume["configMap"]["name"]) or {"data": {}}
                target = workdir / mount["name"]
                target.mkdir()
                for key, value in (cm.get("data") or {}).items():
                    (target / key).write_text(value)
                    (target / key).chmod(0o444)
                target.chmod(0o755)
                workdir.chmod(0o755)
                mounts += ["--volume", f"{target}:{mount['mountPath']}:ro"]
        name = f"kubeapi-{pod['metadata']['name']}-{uuid.uuid4().hex[:6]}"
        self.names.append(name)
        command = container.get("command") or []
        argv = ["podman", "run", "--rm", "--name", name, "--pull", "never", *translation.flags,
                *mounts, "--entrypoint", command[0], container["image"],
                *command[1:], *(container.get("args") or [])]
        return Run(argv, name, workdir)

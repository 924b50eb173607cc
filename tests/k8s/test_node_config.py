"""The real node's generated configuration: what containerd, the kubelet and
`ctr images import` read, checked without starting anything."""

from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import tarfile
import tomllib
from pathlib import Path

from tests.k8s import node

SLOT = node.Slot(3)
PATHS = node.Paths(Path("/work/node"))


def test_containerd_config_parses_and_carries_the_settings_this_machine_needs() -> None:
    config = tomllib.loads(node.containerd_config(SLOT, PATHS, Path("/bin/runc"), "localhost/p:1"))
    assert config["version"] == 3
    assert config["grpc"]["address"] == str(PATHS.socket)
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"BinaryName": "/bin/runc", "SystemdCgroup": False}
    assert runtime["cni"] == {"bin_dirs": ["/usr/lib/cni"], "conf_dir": str(PATHS.cni_conf_dir)}
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"] == {"sandbox": "localhost/p:1"}
    assert config["plugins"]["io.containerd.grpc.v1.cri"]["stream_server_address"] == SLOT.node_ip


def test_kubelet_config_fits_a_cgroup_v1_host_without_cap_sys_resource() -> None:
    config = node.kubelet_config(SLOT, PATHS, "/mem/zuul-k8s-node3", Path("/pki/ca.crt"))
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False
    assert config["oomScoreAdj"] == 0
    assert config["cgroupRoot"] == "/mem/zuul-k8s-node3"
    assert config["address"] == SLOT.host_ip
    assert config["makeIPTablesUtilChains"] is False
    assert config["containerRuntimeEndpoint"] == f"unix://{PATHS.socket}"
    argv = node.kubelet_argv(Path("/bin/kube"), PATHS, SLOT, Path("/k.conf"), "n1")
    assert f"--root-dir={PATHS.kubelet_root}" in argv
    assert PATHS.seccomp_root == PATHS.kubelet_root / "seccomp"  # the kubelet's own rule


def test_slots_have_valid_interface_names_and_disjoint_private_networks() -> None:
    slots = [node.Slot(i) for i in range(node.MAX_NODES)]
    links = [ipaddress.ip_network(f"{s.host_ip}/30", strict=False) for s in slots]
    pods = [ipaddress.ip_network(s.pod_cidr) for s in slots]
    every = links + pods
    assert all(net.is_private for net in every)
    assert not any(a.overlaps(b) for i, a in enumerate(every) for b in every[i + 1:])
    for slot in slots:
        assert len(slot.host_veth) <= 15 and len(slot.node_veth) <= 15  # IFNAMSIZ - 1
        assert ipaddress.ip_address(slot.node_ip) in ipaddress.ip_network(f"{slot.host_ip}/30",
                                                                          strict=False)
    cni = node.cni_config(SLOT, PATHS)
    assert cni["plugins"][0]["ipam"]["ranges"] == [[{"subnet": SLOT.pod_cidr}]]


def test_pause_archive_is_a_consistent_oci_layout() -> None:
    binary = b"\x7fELF pretend"
    data = node.pause_image_archive(binary, "localhost/zuul-k8s-pause:abc")
    assert data == node.pause_image_archive(binary, "localhost/zuul-k8s-pause:abc")  # reproducible
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]

    def blob(descriptor: dict[str, object]) -> bytes:
        content = files["blobs/sha256/" + str(descriptor["digest"]).removeprefix("sha256:")]
        assert "sha256:" + hashlib.sha256(content).hexdigest() == descriptor["digest"]
        assert len(content) == descriptor["size"]
        return content

    index = json.loads(files["index.json"])
    entry = index["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/zuul-k8s-pause:abc"
    manifest = json.loads(blob(entry))
    config = json.loads(blob(manifest["config"]))
    assert config["config"]["Entrypoint"] == ["/pause"]
    layer = gzip.decompress(blob(manifest["layers"][0]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        member = tar.getmember("pause")
        assert member.mode == 0o755
        assert tar.extractfile(member).read() == binary  # type: ignore[union-attr]

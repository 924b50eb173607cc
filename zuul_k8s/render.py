"""Config in, Kubernetes objects (plain dicts) out: pure and deterministic.

No cluster, no clock, no randomness: the same config and zuul.conf give the
same objects in the same order with the same key order, so the YAML written
from them is byte-identical and diffs show only real changes. Nothing in the
output aliases the Config: values taken from it are deep copies, so a caller
may patch the objects (as the self-test and upgrade do) without changing it.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from zuul_k8s import executor_process as daemon
from zuul_k8s import isolation, networkpolicy
from zuul_k8s import mounts as site
from zuul_k8s.config import Config

Obj = dict[str, Any]

PSA_LABEL = "pod-security.kubernetes.io"
CHECKSUM_ANNOTATION = "zuul-k8s.io/zuul-conf-sha256"
STATE_PATH = daemon.STATE_PATH
CONFIG_DIR = "/etc/zuul"
SSH_DIR = daemon.SSH_DIR
TLS_DIR = "/tls/client"
SECRET_MODE = daemon.SECRET_MODE  # readable by the executor through fsGroup, by no one else


def selector_labels(config: Config) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "zuul",
        "app.kubernetes.io/component": "executor",
        "app.kubernetes.io/instance": config.name,
    }


def _metadata(config: Config, name: str, *, namespaced: bool = True) -> Obj:
    meta: Obj = {"name": name}
    if namespaced:
        meta["namespace"] = config.namespace
    meta["labels"] = {
        **selector_labels(config),
        "app.kubernetes.io/managed-by": "zuul-k8s",
        **config["labels"],  # the config refuses the selector keys, so these cannot break selection
    }
    if config["annotations"]:
        meta["annotations"] = dict(config["annotations"])
    return meta


def namespace_labels(level: str, minor: int) -> dict[str, str]:
    """Pod Security labels that admit the executor on the target version.

    Baseline admits `procMount: Unmasked` only from policy v1.35; on older
    clusters the namespace must enforce privileged, and keeps warn and audit at
    the configured level so every other deviation is still reported.
    """
    enforce = level
    if level == "baseline" and minor < isolation.BASELINE_ADMITS_UNMASKED_FROM:
        enforce = "privileged"
    version = f"v1.{minor}"
    labels = {}
    for mode, mode_level in (("enforce", enforce), ("warn", level), ("audit", level)):
        labels[f"{PSA_LABEL}/{mode}"] = mode_level
        labels[f"{PSA_LABEL}/{mode}-version"] = version
    return labels


def namespace(config: Config) -> Obj:
    meta = _metadata(config, config.namespace, namespaced=False)
    meta["labels"].update(
        namespace_labels(config["kubernetes"]["podSecurityLevel"], config.target_minor)
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account(config: Config) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(config, config.name),
        "automountServiceAccountToken": False,
    }


def headless_service(config: Config) -> Obj:
    """Gives StatefulSet executors stable DNS names; zuul-web streams logs over finger."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(config, config.name),
        "spec": {
            "clusterIP": "None",
            # A draining executor is not ready, but zuul-web still streams its
            # running builds' logs: its DNS name must stay while it drains.
            "publishNotReadyAddresses": True,
            "selector": selector_labels(config),
            "ports": [
                {
                    "name": "finger",
                    "port": config["ports"]["finger"],
                    "targetPort": "finger",
                    "protocol": "TCP",
                }
            ],
        },
    }


def network_policy(config: Config) -> Obj:
    return networkpolicy.network_policy(config, _metadata(config, config.name), selector_labels(config))


def pod_disruption_budget(config: Config) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(config, config.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(config)}},
    }


def set_path(target: Obj, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def container_security_context(config: Config) -> Obj:
    context: Obj = {}
    for setting in isolation.CONTAINER_SETTINGS:
        set_path(context, setting.path, setting.value)
    if config.runs_as_root:
        context["capabilities"]["add"] = list(isolation.ROOT_ONLY_CAPABILITIES)
    if daemon.READ_ONLY_ROOT:
        context["readOnlyRootFilesystem"] = True
    return context


def pod_security_context(config: Config) -> Obj:
    user, iso = config["user"], config["isolation"]
    context: Obj = {"runAsUser": user["uid"], "runAsGroup": user["gid"]}
    if not config.runs_as_root:
        context["runAsNonRoot"] = True
        # Root needs no group ownership, and an fsGroup would make root's own
        # SSH key group-readable, which ssh-add refuses (executor_process.py).
        context["fsGroup"] = user["fsGroup"]
        # Re-own a volume only when its top is not ours yet: a PVC's git cache
        # is not walked file by file on every start.
        context["fsGroupChangePolicy"] = "OnRootMismatch"
    context["seccompProfile"] = {"type": iso["seccomp"]}
    if iso["seccomp"] == "Localhost":
        context["seccompProfile"]["localhostProfile"] = iso["seccompProfile"]
    if iso["apparmor"] != "none":
        context["appArmorProfile"] = {"type": iso["apparmor"]}
        if iso["apparmor"] == "Localhost":
            context["appArmorProfile"]["localhostProfile"] = iso["apparmorProfile"]
    if iso["selinux"] == "container_engine_t":
        context["seLinuxOptions"] = {"type": "container_engine_t"}
    return context


def _hostname_env(config: Config) -> list[Obj]:
    """The address zuul-web reaches for live logs (zuul.conf: %(ZUUL_EXECUTOR_HOSTNAME)s)."""
    if config["workload"]["kind"] == "StatefulSet":
        domain = config["kubernetes"]["clusterDomain"]
        return [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "ZUUL_EXECUTOR_HOSTNAME",
                "value": f"$(POD_NAME).{config.name}.{config.namespace}.svc.{domain}",
            },
        ]
    return [{"name": "ZUUL_EXECUTOR_HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def _probes() -> Obj:
    """Zuul's health endpoints on the prometheus port (zuul.conf must set prometheus_port)."""
    return {
        probe.field: {
            "httpGet": {"path": probe.path, "port": "prometheus"},
            "periodSeconds": probe.period,
            "timeoutSeconds": probe.timeout,
            "failureThreshold": probe.failures,
        }
        for probe in daemon.PROBES
    }


def _resources(config: Config) -> Obj:
    """The config's resources, plus an ephemeral-storage request that reserves the state's disk.

    An emptyDir state lives on the node's disk, where Zuul's hdd governor sees
    it; the request makes the scheduler place the executor only where that much
    is free. No limit and no sizeLimit: crossing either evicts the pod with
    every running build, and Zuul cannot see either one coming.
    """
    resources = copy.deepcopy(config["resources"])
    if config["state"]["type"] == "emptyDir":
        requests = resources.setdefault("requests", {})
        requests.setdefault("ephemeral-storage", config["state"]["size"])
    return resources


def executor_container(config: Config) -> Obj:
    secrets = config["secrets"]
    mounts: list[Obj] = [
        {"name": "zuul-config", "mountPath": f"{CONFIG_DIR}/zuul.conf", "subPath": "zuul.conf", "readOnly": True},
        {"name": "state", "mountPath": STATE_PATH},
        {"name": "tmp", "mountPath": daemon.TMP_PATH},
    ]
    if "sshKey" in secrets:
        mounts.append({"name": "ssh-key", "mountPath": SSH_DIR, "readOnly": True})
    if "zookeeperTls" in secrets:
        mounts.append({"name": "zookeeper-tls", "mountPath": TLS_DIR, "readOnly": True})
    mounts += site.volume_mounts(config)
    container: Obj = {
        "name": isolation.EXECUTOR_CONTAINER,
        "image": config["image"],
        "imagePullPolicy": config["imagePullPolicy"],
        "command": list(daemon.INIT_COMMAND),
        "args": list(daemon.EXECUTOR_ARGS),
        "env": [{"name": "HOME", "value": daemon.HOME}, *_hostname_env(config), *site.env(config)],
        "ports": [
            {"name": "finger", "containerPort": config["ports"]["finger"], "protocol": "TCP"},
            {"name": "prometheus", "containerPort": config["ports"]["prometheus"], "protocol": "TCP"},
        ],
        **_probes(),
        "securityContext": container_security_context(config),
        "volumeMounts": mounts,
    }
    if config["envFrom"]:
        container["envFrom"] = site.env_from(config)
    resources = _resources(config)
    if resources:
        container["resources"] = resources
    return container


def _secret_volume(name: str, secret: str, items: list[tuple[str, str]], mode: int = SECRET_MODE) -> Obj:
    source: Obj = {"secretName": secret, "defaultMode": mode}
    if items:
        source["items"] = [{"key": key, "path": path} for key, path in items]
    return {"name": name, "secret": source}


def volumes(config: Config) -> list[Obj]:
    secrets, state = config["secrets"], config["state"]
    out = [
        _secret_volume(
            "zuul-config", secrets["zuulConf"]["name"], [(secrets["zuulConf"]["key"], "zuul.conf")]
        )
    ]
    if state["type"] == "emptyDir":
        out.append({"name": "state", "emptyDir": {}})  # no sizeLimit: see _resources
    out.append({"name": "tmp", "emptyDir": {}})
    if "sshKey" in secrets:
        key_mode = daemon.ROOT_KEY_MODE if config.runs_as_root else SECRET_MODE
        out.append(_secret_volume("ssh-key", secrets["sshKey"]["name"],
                                  [(secrets["sshKey"]["key"], daemon.SSH_KEY_FILE)], key_mode))
    if "zookeeperTls" in secrets:
        out.append(_secret_volume("zookeeper-tls", secrets["zookeeperTls"]["name"], []))
    return out + site.volumes(config)


def pod_template(config: Config, zuul_conf: bytes | None) -> Obj:
    scheduling = config["scheduling"]
    meta: Obj = {"labels": dict(_metadata(config, config.name)["labels"])}
    annotations = {**config["annotations"], **config["podAnnotations"]}
    if zuul_conf is not None:
        annotations[CHECKSUM_ANNOTATION] = hashlib.sha256(zuul_conf).hexdigest()
    if annotations:
        meta["annotations"] = annotations
    spec: Obj = {
        "serviceAccountName": config.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    for setting in isolation.POD_SETTINGS:
        set_path(spec, setting.path, setting.value)
    spec["terminationGracePeriodSeconds"] = config["gracefulStopSeconds"]
    spec["securityContext"] = pod_security_context(config)
    spec["containers"] = [executor_container(config)]
    spec["volumes"] = volumes(config)
    for key in ("nodeSelector", "tolerations", "affinity"):
        if scheduling[key]:
            spec[key] = copy.deepcopy(scheduling[key])
    if "priorityClassName" in scheduling:
        spec["priorityClassName"] = scheduling["priorityClassName"]
    if scheduling["topologySpreadConstraints"]:
        spec["topologySpreadConstraints"] = _spread(config)
    if config["imagePullSecrets"]:
        spec["imagePullSecrets"] = site.image_pull_secrets(config)
    if config["hostAliases"]:
        spec["hostAliases"] = site.host_aliases(config)
    return {"metadata": meta, "spec": spec}


def _spread(config: Config) -> list[Obj]:
    """The spread constraints; one without labelSelector counts the executors (alone it would count none)."""
    out = copy.deepcopy(config["scheduling"]["topologySpreadConstraints"])
    for constraint in out:
        constraint.setdefault("labelSelector", {"matchLabels": selector_labels(config)})
    return out


def workload(config: Config, zuul_conf: bytes | None) -> Obj:
    kind = config["workload"]["kind"]
    spec: Obj = {
        "replicas": config["workload"]["replicas"],
        "selector": {"matchLabels": selector_labels(config)},
    }
    if kind == "Deployment":
        # Never lower capacity: a new executor is ready before an old one drains.
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    else:
        spec["serviceName"] = config.name
        spec["podManagementPolicy"] = "Parallel"
        spec["updateStrategy"] = {"type": "RollingUpdate"}
    spec["template"] = pod_template(config, zuul_conf)
    state = config["state"]
    if state["type"] == "pvc":
        claim: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": state["size"]}}}
        if "storageClassName" in state:
            claim["storageClassName"] = state["storageClassName"]
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "state"}, "spec": claim}]
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _metadata(config, config.name), "spec": spec}


def render(config: Config, zuul_conf: bytes | None = None) -> list[Obj]:
    """Every object of the executor, in the order they must be applied."""
    objects = []
    if config["namespace"]["create"]:
        objects.append(namespace(config))
    objects += [
        service_account(config),
        headless_service(config),
    ]
    if config["networkPolicy"]["enabled"]:
        # Before the workload: its pods are fenced from their first start.
        objects.append(network_policy(config))
    objects += [
        workload(config, zuul_conf),
        pod_disruption_budget(config),
    ]
    return objects

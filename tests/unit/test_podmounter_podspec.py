"""The Mountpoint Pod and its namespace (podmounter/podspec.py): valid core/v1 objects for every Kubernetes
version s3csi supports (kubernetes-validate, strict), admitted by the Pod Security "restricted" profile
(tests/pod_security_support.py), with each setting docs/kubernetes.md promises."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest

from s3csi import __version__
from s3csi.errors import InvalidArgument
from s3csi.podmounter.names import is_label_value, label_digest
from s3csi.podmounter.podspec import (
    DEFAULT_NAMESPACE,
    MountpointPodResources,
    MountpointPodSettings,
    mountpoint_namespace,
    mountpoint_pod,
)
from s3csi.volume.context import CacheType, CacheVolume
from s3csi.volume.quantity import binary_quantity, cpu_millicores, memory_bytes
from tests.pod_security_support import violations
from tests.unit.test_podmounter_crd import SUPPORTED_VERSIONS

KEY = "0123456789abcdef0123456789abcdef"
NODE = "ip-10-0-1-23.eu-west-1.compute.internal"
VOLUME_ID = "bucket:prefix-volume:pvc-0b0a4c8e"
PV = "pvc-0b0a4c8e-8d8f-4b7e-9d2f-1c3c9a9b7c11"
IMAGE = "registry.example.com/s3csi:0.1.0"

SETTINGS = [
    pytest.param(MountpointPodSettings(image=IMAGE), id="defaults"),
    pytest.param(
        MountpointPodSettings(
            image="registry.example.com/s3csi@sha256:" + "a" * 64,
            namespace="storage-mounters",
            image_pull_policy="Always",
            priority_class_name="system-node-critical",
            resources=MountpointPodResources(cpu_request="1", memory_request="1Gi", memory_limit="2G"),
            driver_version="0.0.0+unknown",
            metrics=True,
        ),
        id="everything-set",
    ),
]


def build(settings: MountpointPodSettings, **changes: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "node_name": NODE,
        "key": KEY,
        "volume_id": VOLUME_ID,
        "persistent_volume_name": PV,
    }
    return mountpoint_pod(settings, **{**arguments, **changes})


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("settings", SETTINGS)
def test_the_pod_is_a_valid_pod(settings: MountpointPodSettings, version: str) -> None:
    kubernetes_validate.validate(build(settings), version, strict=True)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_namespace_is_a_valid_namespace(version: str) -> None:
    kubernetes_validate.validate(mountpoint_namespace(), version, strict=True)


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_pod_meets_the_restricted_pod_security_profile(settings: MountpointPodSettings) -> None:
    assert violations(build(settings)) == []


def _with(pod: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(pod)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "control"),
    [
        ("spec.hostPID", True, "Host Namespaces"),
        ("spec.hostNetwork", True, "Host Namespaces"),
        ("spec.volumes", [{"name": "dev", "hostPath": {"path": "/dev/fuse"}}], "HostPath Volumes"),
        ("spec.volumes", [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}], "Volume Types"),
        ("spec.containers.0.securityContext.privileged", True, "Privileged Containers"),
        ("spec.containers.0.securityContext.allowPrivilegeEscalation", None, "Privilege Escalation"),
        ("spec.containers.0.securityContext.capabilities", {"add": ["SYS_ADMIN"]}, "Capabilities"),
        ("spec.containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "Host Ports"),
        ("spec.securityContext.runAsNonRoot", None, "Running as Non-root"),
        ("spec.securityContext.runAsUser", 0, "Running as Non-root user"),
        ("spec.securityContext.seccompProfile", {"type": "Unconfined"}, "Seccomp"),
        ("spec.securityContext.seccompProfile", None, "Seccomp"),
        ("spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "Sysctls"),
    ],
)
def test_the_checker_catches_what_restricted_refuses(path: str, value: Any, control: str) -> None:
    # The checker is not vacuous: the same pod with one control broken fails that control.
    pod = build(MountpointPodSettings(image=IMAGE))
    if path == "spec.securityContext.runAsNonRoot":
        pod = _with(pod, "spec.containers.0.securityContext.runAsNonRoot", None)
    found = violations(_with(pod, path, value))
    assert any(line.startswith(f"{control}:") for line in found), found


def test_the_security_settings() -> None:
    spec = build(MountpointPodSettings(image=IMAGE))["spec"]
    assert spec["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert spec["automountServiceAccountToken"] is False
    assert not {"hostPID", "hostIPC", "hostNetwork", "shareProcessNamespace"} & set(spec)


def test_the_mounter_command_and_comm_dir() -> None:
    pod = build(MountpointPodSettings(image=IMAGE))
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (IMAGE, "IfNotPresent")
    assert container["command"] == ["s3csi", "mounter", "--comm-dir", "/comm"]
    assert container["volumeMounts"] == [{"name": "comm", "mountPath": "/comm"}]
    # The node plugin finds the comm dir at <kubelet-dir>/pods/<uid>/volumes/kubernetes.io~empty-dir/comm.
    assert spec["volumes"] == [{"name": "comm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    assert spec["restartPolicy"] == "Always"
    assert (pod["metadata"]["generateName"], pod["metadata"]["namespace"]) == ("mp-", DEFAULT_NAMESPACE)
    assert "name" not in pod["metadata"]


def test_metrics_are_on_a_pod_port_with_scrape_annotations_only_when_asked() -> None:
    pod = build(MountpointPodSettings(image=IMAGE, metrics=True))
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["s3csi", "mounter", "--comm-dir", "/comm", "--metrics-address", ":9813"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9813, "protocol": "TCP"}]
    assert "hostPort" not in container["ports"][0] and "hostNetwork" not in pod["spec"]
    annotations = pod["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9813",
        "prometheus.io/path": "/metrics",
    }
    plain = build(MountpointPodSettings(image=IMAGE))
    (container,) = plain["spec"]["containers"]
    assert "ports" not in container and "--metrics-address" not in container["command"]
    assert not [k for k in plain["metadata"]["annotations"] if k.startswith("prometheus.io/")]


def test_scheduling_on_the_workload_node() -> None:
    spec = build(MountpointPodSettings(image=IMAGE, priority_class_name="s3csi-mounter"))["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}]
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "s3csi-mounter"
    assert "priorityClassName" not in build(MountpointPodSettings(image=IMAGE))["spec"]


def test_the_default_resources_are_the_measured_ones() -> None:
    (container,) = build(MountpointPodSettings(image=IMAGE))["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "160Mi"},
        "limits": {"memory": "512Mi"},
    }


_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)


@pytest.mark.parametrize("settings", SETTINGS)
def test_labels_and_annotations(settings: MountpointPodSettings) -> None:
    metadata = build(settings)["metadata"]
    labels, annotations = metadata["labels"], metadata["annotations"]
    # kubernetes-validate checks no label syntax: the API server would.
    for key, value in labels.items():
        assert _LABEL_KEY.fullmatch(key) and len(key.rsplit("/", 1)[-1]) <= 63, key
        assert is_label_value(value), (key, value)
    assert labels["s3csi.io/sharing-key"] == KEY
    assert labels["s3csi.io/volume-id-digest"] == label_digest(VOLUME_ID)
    assert labels["app.kubernetes.io/component"] == "mountpoint-pod"
    own = {k: v for k, v in annotations.items() if not k.startswith("prometheus.io/")}
    assert own == {
        "s3csi.io/volume-id": VOLUME_ID,
        "s3csi.io/persistent-volume-name": PV,
        "s3csi.io/driver-version": settings.driver_version,
        "cluster-autoscaler.kubernetes.io/daemonset-pod": "true",
    }


def test_the_driver_version_defaults_to_the_package_version() -> None:
    assert MountpointPodSettings(image=IMAGE).driver_version == __version__


def test_each_driver_version_labels_its_pods_apart() -> None:
    def version_label(version: str) -> str:
        label: str = build(MountpointPodSettings(image=IMAGE, driver_version=version))["metadata"]["labels"][
            "s3csi.io/driver-version"
        ]
        return label

    versions = ["0.1.0", "0.1.1", "0.0.0+unknown", "0.0.0_unknown", "0.1.0+g1a2b3c", "0.1.0+g1a2b3d"]
    assert len({version_label(version) for version in versions}) == len(versions)


def test_the_namespace_enforces_restricted() -> None:
    namespace = mountpoint_namespace("storage-mounters")
    assert namespace["metadata"]["name"] == "storage-mounters"
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.31"
    assert (
        labels["pod-security.kubernetes.io/warn"]
        == labels["pod-security.kubernetes.io/audit"]
        == "restricted"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": ""}, "Mountpoint Pod image '' must be a non-empty image reference"),
        ({"image": "s3csi latest"}, "must be a non-empty image reference"),
        ({"namespace": "S3csi"}, "Mountpoint Pod namespace 'S3csi' is not a DNS-1123 label"),
        ({"namespace": "n" * 64}, "is not a DNS-1123 label"),
        (
            {"image_pull_policy": "Sometimes"},
            "image pull policy 'Sometimes' is not one of Always, IfNotPresent, Never",
        ),
        (
            {"priority_class_name": "High_Priority"},
            "priority class 'High_Priority' is not a DNS-1123 subdomain",
        ),
        ({"driver_version": ""}, "the driver version of Mountpoint Pods must not be empty"),
    ],
)
def test_invalid_settings(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        MountpointPodSettings(**{"image": IMAGE, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"memory_request": "1Gi", "memory_limit": "512Mi"}, "memory request 1Gi exceeds its limit 512Mi"),
        ({"memory_request": "160MB"}, "memory quantity '160MB' must be an integer"),
        ({"memory_limit": "-1"}, "memory quantity '-1'"),
        ({"cpu_request": "0.5"}, "CPU quantity '0.5' must be whole cores or millicores"),
        ({"cpu_limit": "1.5"}, "CPU quantity '1.5'"),
        ({"cpu_request": "2", "cpu_limit": "1"}, "CPU request 2 exceeds its limit 1"),
    ],
)
def test_invalid_resources(changes: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        MountpointPodResources(**changes)


# A volume's mountpointContainerResources* attributes (volume/context.py) over the controller's defaults.
OVERRIDES = [
    pytest.param(
        {}, {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "512Mi"}}, id="none"
    ),
    pytest.param(
        {"cpu_request": "1", "memory_request": "1Gi", "memory_limit": "2Gi"},
        {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        id="all",
    ),
    pytest.param(
        {"memory_limit": "4G"},
        {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "4G"}},
        id="limit-only",
    ),
    pytest.param(
        {"cpu_request": "50m", "memory_request": "512Mi"},
        {"requests": {"cpu": "50m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
        id="request-up-to-the-default-limit",
    ),
    pytest.param(
        {"cpu_request": "500m", "cpu_limit": "2"},
        {"requests": {"cpu": "500m", "memory": "160Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}},
        id="cpu-limit",
    ),
]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(("overrides", "expected"), OVERRIDES)
def test_a_volume_sets_the_pod_resources(
    overrides: dict[str, str], expected: dict[str, Any], version: str
) -> None:
    changes: dict[str, str | None] = {
        "cpu_request": None,
        "memory_request": None,
        "memory_limit": None,
        "cpu_limit": None,
        **overrides,
    }
    resources = MountpointPodResources().overridden(**changes)
    pod = mountpoint_pod(
        MountpointPodSettings(image=IMAGE),
        node_name=NODE,
        key=KEY,
        volume_id=VOLUME_ID,
        persistent_volume_name=PV,
        resources=resources,
    )
    assert pod["spec"]["containers"][0]["resources"] == expected
    kubernetes_validate.validate(pod, version, strict=True)
    assert violations(pod) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"memory_request": "1Gi"}, "memory request 1Gi exceeds its limit 512Mi"),
        ({"cpu_limit": "100m"}, "CPU request 200m exceeds its limit 100m"),
    ],
)
def test_a_volume_request_above_the_resulting_limit_is_refused(
    overrides: dict[str, str], message: str
) -> None:
    changes: dict[str, str | None] = {"cpu_request": None, "memory_request": None, "memory_limit": None}
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        MountpointPodResources().overridden(**{**changes, **overrides})


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("160Mi", 160 * 2**20), ("1G", 10**9), ("1048576", 2**20), ("2Ti", 2 * 2**40), ("3k", 3000)],
)
def test_memory_bytes(quantity: str, expected: int) -> None:
    assert memory_bytes(quantity) == expected


@pytest.mark.parametrize(("quantity", "expected"), [("200m", 200), ("2", 2000), ("0", 0)])
def test_cpu_millicores(quantity: str, expected: int) -> None:
    assert cpu_millicores(quantity) == expected


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (lambda: build(MountpointPodSettings(image=IMAGE), node_name="Node_1"), "node name 'Node_1'"),
        (lambda: mountpoint_namespace("S3csi"), "namespace 'S3csi' is not a DNS-1123 label"),
    ],
)
def test_invalid_names_are_refused(builder: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        builder()


CACHES = [
    pytest.param(
        CacheVolume(CacheType.EMPTY_DIR),
        {"name": "cache", "emptyDir": {}},
        {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "512Mi"}},
        id="disk",
    ),
    pytest.param(
        CacheVolume(CacheType.EMPTY_DIR, size_limit="2Gi"),
        {"name": "cache", "emptyDir": {"sizeLimit": "2Gi"}},
        {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "512Mi"}},
        id="disk-bounded",
    ),
    pytest.param(
        CacheVolume(CacheType.EMPTY_DIR, size_limit="1Gi", medium_memory=True),
        {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        # tmpfs pages are charged to the pod: the cache's size is added to the request and the limit.
        {"requests": {"cpu": "200m", "memory": "1184Mi"}, "limits": {"memory": "1536Mi"}},
        id="memory",
    ),
    pytest.param(
        CacheVolume(CacheType.EPHEMERAL, storage_class_name="local-nvme", storage_request="100Gi"),
        {
            "name": "cache",
            "ephemeral": {
                "volumeClaimTemplate": {
                    "metadata": {
                        "labels": {
                            "app.kubernetes.io/name": "s3csi",
                            "app.kubernetes.io/component": "mountpoint-pod",
                        }
                    },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "100Gi"}},
                        "storageClassName": "local-nvme",
                    },
                }
            },
        },
        {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "512Mi"}},
        id="ephemeral",
    ),
]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(("cache", "volume", "resources"), CACHES)
def test_a_volume_with_a_cache_gets_a_cache_volume(
    cache: CacheVolume, volume: dict[str, Any], resources: dict[str, Any], version: str
) -> None:
    pod = mountpoint_pod(
        MountpointPodSettings(image=IMAGE),
        node_name=NODE,
        key=KEY,
        volume_id=VOLUME_ID,
        persistent_volume_name=PV,
        cache=cache,
    )
    [container] = pod["spec"]["containers"]
    assert pod["spec"]["volumes"][1] == volume
    assert container["volumeMounts"][1] == {"name": "cache", "mountPath": "/cache"}
    assert container["resources"] == resources
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    kubernetes_validate.validate(pod, version, strict=True)
    assert violations(pod) == []  # emptyDir and ephemeral are volume types "restricted" admits


@pytest.mark.parametrize(
    ("size", "quantity"), [(0, "0"), (1, "1"), (1024, "1Ki"), (3 * 2**20, "3Mi"), (2**30 + 2**20, "1025Mi")]
)
def test_binary_quantity(size: int, quantity: str) -> None:
    assert binary_quantity(size) == quantity
    assert memory_bytes(quantity) == size

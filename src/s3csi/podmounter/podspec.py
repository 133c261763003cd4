"""The Mountpoint Pod and its namespace as Kubernetes objects, built by pure functions (no API call).

The controller creates what :func:`mountpoint_pod` returns; docs/kubernetes.md#the-mountpoint-pod explains
each setting. In short, the pod runs ``s3csi mounter --comm-dir /comm`` as uid/gid 1000 with no
capability, no privilege escalation, the runtime's default seccomp profile and a read-only root file system:
the privileged half (opening /dev/fuse, mount(2)) is the node plugin's, which hands the mounter a mounted
FUSE fd over ``/comm/mount.sock``. Nothing in it needs the API server, so it gets no service account token.
It satisfies the Pod Security "restricted" profile its namespace enforces (:func:`mountpoint_namespace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from s3csi import __version__
from s3csi.errors import InvalidArgument
from s3csi.podmounter.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    label_digest,
    label_value,
)
from s3csi.podmounter.runtime import MOUNTER_GID, MOUNTER_UID
from s3csi.volume.context import (
    CACHE_MEDIUM_MEMORY,
    DRIVER_VERSION_KEY,
    PERSISTENT_VOLUME_NAME_ANNOTATION,
    SHARING_KEY_LABEL,
    VOLUME_ID_ANNOTATION,
    VOLUME_ID_DIGEST_LABEL,
    CacheType,
    CacheVolume,
)
from s3csi.volume.quantity import binary_quantity, cpu_millicores, memory_bytes

JsonObject = dict[str, Any]

DEFAULT_NAMESPACE = "s3csi-mounters"
GENERATE_NAME = "mp-"
CONTAINER_NAME = "mounter"
COMM_VOLUME = "comm"
COMM_DIR = "/comm"
COMM_SIZE_LIMIT = "1Mi"
"""The comm dir holds mount.sock and the credentials files (a few KiB). Memory-backed, so credentials never
reach the node's disk; its size counts against the pod's memory limit, hence small."""
CACHE_VOLUME = "cache"
CACHE_DIR = "/cache"
"""Where the Mountpoint Pod's cache volume (volume attribute ``cache``) is mounted; the mounter's --cache."""

APP_NAME_LABEL = "app.kubernetes.io/name"
APP_COMPONENT_LABEL = "app.kubernetes.io/component"
APP_NAME = "s3csi"
COMPONENT = "mountpoint-pod"
CLUSTER_AUTOSCALER_DAEMONSET_POD = "cluster-autoscaler.kubernetes.io/daemonset-pod"
"""The cluster autoscaler treats the pod like a DaemonSet's: a node is not kept up for it alone, and
scaling down counts it as node overhead, not as a workload to move elsewhere."""

POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_SECURITY_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
POD_SECURITY_WARN = "pod-security.kubernetes.io/warn"
POD_SECURITY_WARN_VERSION = "pod-security.kubernetes.io/warn-version"
POD_SECURITY_AUDIT = "pod-security.kubernetes.io/audit"
POD_SECURITY_AUDIT_VERSION = "pod-security.kubernetes.io/audit-version"
POD_SECURITY_PINNED_VERSION = "v1.31"
"""The oldest Kubernetes version s3csi supports: enforcement pinned to its rules, so a later release's
stricter rule cannot stop Mountpoint Pods from starting; warn and audit follow the cluster's own."""

IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")

METRICS_PORT = 9813
METRICS_PORT_NAME = "metrics"
METRICS_PATH = "/metrics"
PROMETHEUS_SCRAPE = "prometheus.io/scrape"
PROMETHEUS_PORT = "prometheus.io/port"
PROMETHEUS_PATH = "prometheus.io/path"
"""With ``metrics`` on, the mounter serves its metrics on the pod's IP (the pod is not hostNetwork: no port
is opened on the node), and these annotations let a Prometheus that discovers pods scrape it."""


@dataclass(frozen=True)
class MountpointPodResources:
    """Requests and limits of the mounter container; the defaults are measured (docs/kubernetes.md).

    ``python -m bench.mounter_memory`` (one fresh ``s3csi mount`` per round, the same file system code the
    mounter runs, a cold 512 MiB sequential read from s3rver, 3 rounds): resident set 49 MiB idle, peak
    151-154 MiB during the read, 49 MiB again after it; 0.20 cores during the read at 260-283 MB/s.

    - memory request 160Mi: the measured peak of one sequential reader, rounded up, so the scheduler
      reserves what a reading Mountpoint Pod uses;
    - memory limit 512Mi: twice the project's RSS budget of 256 MiB for a sequential read
      (docs/performance.md), room for several concurrent readers. Past it the kernel kills the mounter
      and every open file of its workloads fails, so it is generous;
    - CPU request 200m: the measured use during the read. No CPU limit: a throttled FUSE server stalls
      every workload reading through it, and an idle one uses none.
    """

    cpu_request: str = "200m"
    memory_request: str = "160Mi"
    memory_limit: str = "512Mi"
    cpu_limit: str | None = None
    """None by default (see above); a volume may set one (``mountpointContainerResourcesLimitsCpu``)."""

    def __post_init__(self) -> None:
        cpu_millicores(self.cpu_request)
        if self.cpu_limit is not None and cpu_millicores(self.cpu_request) > cpu_millicores(self.cpu_limit):
            raise InvalidArgument(
                f"Mountpoint Pod CPU request {self.cpu_request} exceeds its limit {self.cpu_limit}"
            )
        if memory_bytes(self.memory_request) > memory_bytes(self.memory_limit):
            raise InvalidArgument(
                f"Mountpoint Pod memory request {self.memory_request} exceeds its limit {self.memory_limit}"
            )

    def overridden(
        self,
        *,
        cpu_request: str | None,
        memory_request: str | None,
        memory_limit: str | None,
        cpu_limit: str | None = None,
    ) -> MountpointPodResources:
        """These resources with a volume's values (its ``mountpointContainerResources*`` attributes) where it
        sets them; InvalidArgument when the result requests more than its limit."""
        changes = {
            "cpu_request": cpu_request,
            "memory_request": memory_request,
            "memory_limit": memory_limit,
            "cpu_limit": cpu_limit,
        }
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    def with_memory_added(self, size: int) -> MountpointPodResources:
        """These resources with ``size`` bytes more memory requested and allowed: a memory-backed cache
        volume's pages are charged to the pod, so without this the cache would push the mounter into its
        memory limit."""
        return replace(
            self,
            memory_request=binary_quantity(memory_bytes(self.memory_request) + size),
            memory_limit=binary_quantity(memory_bytes(self.memory_limit) + size),
        )

    def to_kubernetes(self) -> JsonObject:
        limits = {"memory": self.memory_limit}
        if self.cpu_limit is not None:
            limits["cpu"] = self.cpu_limit
        return {"requests": {"cpu": self.cpu_request, "memory": self.memory_request}, "limits": limits}


@dataclass(frozen=True)
class MountpointPodSettings:
    """How the controller builds Mountpoint Pods (its configuration); validated when built."""

    image: str
    """The driver's own image: the mounter is ``s3csi mounter``, the same code as the node plugin."""
    namespace: str = DEFAULT_NAMESPACE
    image_pull_policy: str = "IfNotPresent"
    priority_class_name: str | None = None
    """None: the cluster's default priority. A Mountpoint Pod evicted before its workloads takes their
    volume with it, so a class at least as high as the workloads' is advisable."""
    resources: MountpointPodResources = field(default_factory=MountpointPodResources)
    driver_version: str = __version__
    metrics: bool = False
    """The controller's ``--mountpoint-pod-metrics``: each mounter serves its Prometheus metrics on the pod
    port :data:`METRICS_PORT`, named ``metrics``, with the ``prometheus.io/*`` annotations."""

    def __post_init__(self) -> None:
        if not self.image or any(character.isspace() for character in self.image):
            raise InvalidArgument(
                f"Mountpoint Pod image {self.image[:80]!r} must be a non-empty image reference"
            )
        if not is_dns1123_label(self.namespace):
            raise InvalidArgument(f"Mountpoint Pod namespace {self.namespace[:80]!r} is not a DNS-1123 label")
        if self.image_pull_policy not in IMAGE_PULL_POLICIES:
            raise InvalidArgument(
                f"image pull policy {self.image_pull_policy[:80]!r} is not one of "
                f"{', '.join(IMAGE_PULL_POLICIES)}"
            )
        if self.priority_class_name is not None and not is_dns1123_subdomain(self.priority_class_name):
            raise InvalidArgument(
                f"priority class {self.priority_class_name[:80]!r} is not a DNS-1123 subdomain"
            )
        if not self.driver_version:
            raise InvalidArgument("the driver version of Mountpoint Pods must not be empty")


def mountpoint_pod_labels(settings: MountpointPodSettings, *, key: str, volume_id: str) -> dict[str, str]:
    """The labels the controller selects its Mountpoint Pods by: per sharing key, volume and driver version
    (a Mountpoint Pod labelled with another version is never reused)."""
    return {
        APP_NAME_LABEL: APP_NAME,
        APP_COMPONENT_LABEL: COMPONENT,
        SHARING_KEY_LABEL: key,
        VOLUME_ID_DIGEST_LABEL: label_digest(volume_id),
        DRIVER_VERSION_KEY: label_value(settings.driver_version),
    }


def mountpoint_pod(
    settings: MountpointPodSettings,
    *,
    node_name: str,
    key: str,
    volume_id: str,
    persistent_volume_name: str,
    resources: MountpointPodResources | None = None,
    cache: CacheVolume | None = None,
) -> JsonObject:
    """The Mountpoint Pod serving sharing key ``key`` on node ``node_name`` (a core/v1 Pod to create).

    ``resources``: its volume's (:meth:`MountpointPodResources.overridden`); None: ``settings.resources``.
    ``cache``: its volume's cache volume (:func:`cache_volume`), mounted at :data:`CACHE_DIR`.

    Its name comes from the API server (``generateName``); the attachment records it. Raises
    InvalidArgument for a node name that is not a DNS-1123 subdomain.
    """
    if not is_dns1123_subdomain(node_name):
        raise InvalidArgument(f"node name {node_name[:80]!r} is not a DNS-1123 subdomain")
    container: JsonObject = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["s3csi", "mounter", "--comm-dir", COMM_DIR],
        "securityContext": {
            "runAsNonRoot": True,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
        "resources": _with_cache_memory(resources or settings.resources, cache).to_kubernetes(),
        "volumeMounts": [{"name": COMM_VOLUME, "mountPath": COMM_DIR}],
        # When the mounter dies before logging to a termination file, its last log lines explain why:
        # the node plugin's "Mountpoint Pod failed" message quotes them.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    spec: JsonObject = {
        # Always, not OnFailure: a mounter exits 0 once its mount is unmounted; with OnFailure the pod would
        # then be Succeeded for good, and a workload joining the sharing key before the controller retires
        # it could not be served. A crashed mounter is restarted in place (the node plugin hands it a new
        # FUSE session).
        "restartPolicy": "Always",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsUser": MOUNTER_UID,
            "runAsGroup": MOUNTER_GID,
            "fsGroup": MOUNTER_GID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": COMM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": COMM_SIZE_LIMIT}}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
                    ]
                }
            }
        },
        # Every taint: the workload was scheduled onto this node, so its volume's server must run there too,
        # and stay as long as the workload tolerates a NoExecute taint.
        "tolerations": [{"operator": "Exists"}],
    }
    if settings.priority_class_name is not None:
        spec["priorityClassName"] = settings.priority_class_name
    if cache is not None:
        container["volumeMounts"].append({"name": CACHE_VOLUME, "mountPath": CACHE_DIR})
        spec["volumes"].append(cache_volume(cache))
    annotations = {
        VOLUME_ID_ANNOTATION: volume_id,
        PERSISTENT_VOLUME_NAME_ANNOTATION: persistent_volume_name,
        DRIVER_VERSION_KEY: settings.driver_version,
        CLUSTER_AUTOSCALER_DAEMONSET_POD: "true",
    }
    if settings.metrics:
        container["command"] += ["--metrics-address", f":{METRICS_PORT}"]
        container["ports"] = [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}]
        annotations |= {
            PROMETHEUS_SCRAPE: "true",
            PROMETHEUS_PORT: str(METRICS_PORT),
            PROMETHEUS_PATH: METRICS_PATH,
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": GENERATE_NAME,
            "namespace": settings.namespace,
            "labels": mountpoint_pod_labels(settings, key=key, volume_id=volume_id),
            "annotations": annotations,
        },
        "spec": spec,
    }


def _with_cache_memory(
    resources: MountpointPodResources, cache: CacheVolume | None
) -> MountpointPodResources:
    if cache is None or not cache.medium_memory:
        return resources
    return resources.with_memory_added(cache.size_bytes or 0)


def cache_volume(cache: CacheVolume) -> JsonObject:
    """The pod volume of the ``cache*`` volume attributes."""
    if cache.type is CacheType.EMPTY_DIR:
        empty_dir: JsonObject = {}
        if cache.medium_memory:
            empty_dir["medium"] = CACHE_MEDIUM_MEMORY
        if cache.size_limit is not None:
            empty_dir["sizeLimit"] = cache.size_limit
        return {"name": CACHE_VOLUME, "emptyDir": empty_dir}
    claim: JsonObject = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": cache.storage_request}},
    }
    if cache.storage_class_name is not None:
        claim["storageClassName"] = cache.storage_class_name
    return {
        "name": CACHE_VOLUME,
        "ephemeral": {
            "volumeClaimTemplate": {
                "metadata": {"labels": {APP_NAME_LABEL: APP_NAME, APP_COMPONENT_LABEL: COMPONENT}},
                "spec": claim,
            }
        },
    }


def mountpoint_namespace(name: str = DEFAULT_NAMESPACE) -> JsonObject:
    """The namespace of the Mountpoint Pods, enforcing the Pod Security "restricted" profile: a pod there that
    asks for more (root, a capability, a host path) is refused at admission."""
    if not is_dns1123_label(name):
        raise InvalidArgument(f"namespace {name[:80]!r} is not a DNS-1123 label")
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                APP_NAME_LABEL: APP_NAME,
                POD_SECURITY_ENFORCE: "restricted",
                POD_SECURITY_ENFORCE_VERSION: POD_SECURITY_PINNED_VERSION,
                POD_SECURITY_WARN: "restricted",
                POD_SECURITY_WARN_VERSION: "latest",
                POD_SECURITY_AUDIT: "restricted",
                POD_SECURITY_AUDIT_VERSION: "latest",
            },
        },
    }

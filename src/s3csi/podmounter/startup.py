"""The node plugin's Mountpoint Pod publisher, built from ``s3csi driver``'s flags.

``--runtime`` chooses where Mountpoint Pods run: ``local`` (the default) starts them as processes here,
``kubernetes`` waits for the Pods ``s3csi controller`` creates; it needs the Kubernetes API
(``--kube-api``) and takes ``--mountpoint-namespace`` and ``--mountpoint-pod-timeout``. ``--state-dir``
holds what must survive a restart of the node plugin; ``--sts-audience`` is the audience of the
service-account token exchanged for ``authenticationSource: pod``. All apply to the node service only.
Starting the publisher tidies what a previous node plugin left half done (``recover``).
"""

from __future__ import annotations

from dataclasses import dataclass

from s3csi.credentials.plan import DEFAULT_AUDIENCE
from s3csi.errors import InvalidArgument
from s3csi.kube.settings import KubeApiSettings
from s3csi.metrics.node import NodeMetrics
from s3csi.podmounter.podspec import DEFAULT_NAMESPACE
from s3csi.podmounter.publisher import PodMounterPublisher, PublisherSettings
from s3csi.podmounter.recovery import RecoverySettings
from s3csi.podmounter.runtime import MountpointPodRuntime
from s3csi.podmounter.runtime.kubernetes import (
    DEFAULT_WAIT_TIMEOUT_S,
    KubernetesRuntime,
    KubernetesRuntimeSettings,
)
from s3csi.podmounter.runtime.local import LocalRuntime
from s3csi.s3.credentials import CredentialProvider
from s3csi.s3.imds import DEFAULT_ENDPOINT as METADATA_ENDPOINT
from s3csi.s3.settings import S3Settings

LOCAL = "local"
KUBERNETES = "kubernetes"
RUNTIMES = (LOCAL, KUBERNETES)
DEFAULT_STATE_DIR = "/var/lib/s3csi"


@dataclass(frozen=True)
class NodeRuntimeFlags:
    runtime: str | None  # --runtime; None: local
    state_dir: str | None  # --state-dir; None: DEFAULT_STATE_DIR
    sts_audience: str | None = None  # --sts-audience; None: sts.amazonaws.com
    mountpoint_namespace: str | None = None  # --mountpoint-namespace (kubernetes); None: s3csi-mounters
    mountpoint_pod_timeout: float | None = None  # --mountpoint-pod-timeout (kubernetes); None: 90 s
    mounter_crash_loop_window: float | None = None  # --mounter-crash-loop-window; None: 10 s
    mountpoint_pod_metrics: bool = False  # --mountpoint-pod-metrics (local)


def publisher_settings(
    flags: NodeRuntimeFlags,
    *,
    serves_node: bool,
    node_id: str,
    kubelet_dir: str,
    s3: S3Settings,
    sts_endpoint_url: str | None = None,
    region_configured: bool = True,
    metadata_endpoint: str | None = METADATA_ENDPOINT,
) -> PublisherSettings | None:
    """Validate the flags (InvalidArgument names the flag); None when this process serves no node.
    ``sts_endpoint_url``: the driver environment's STS endpoint (``s3.sts.sts_endpoint_override``);
    ``region_configured`` and ``metadata_endpoint``: see :class:`PublisherSettings`."""
    if not serves_node:
        named = (
            ("--runtime", flags.runtime),
            ("--state-dir", flags.state_dir),
            ("--sts-audience", flags.sts_audience),
            ("--mountpoint-namespace", flags.mountpoint_namespace),
            ("--mountpoint-pod-timeout", flags.mountpoint_pod_timeout),
            ("--mounter-crash-loop-window", flags.mounter_crash_loop_window),
            ("--mountpoint-pod-metrics", flags.mountpoint_pod_metrics or None),
        )
        for name, value in named:
            if value is not None:
                raise InvalidArgument(f"{name} applies to the node service only (--mode node or all)")
        return None
    if flags.mountpoint_pod_metrics and flags.runtime == KUBERNETES:
        raise InvalidArgument(
            f"--mountpoint-pod-metrics applies to --runtime {LOCAL} only: with {KUBERNETES}, the "
            "controller's --mountpoint-pod-metrics gives the Mountpoint Pods their metrics port"
        )
    if flags.runtime not in (None, *RUNTIMES):
        raise InvalidArgument(f"--runtime {flags.runtime}: choose {' or '.join(RUNTIMES)}")
    state_dir = flags.state_dir or DEFAULT_STATE_DIR
    if not state_dir.startswith("/"):
        raise InvalidArgument(f"--state-dir {state_dir!r} must be an absolute path")
    if flags.sts_audience is not None and (
        not flags.sts_audience or flags.sts_audience != flags.sts_audience.strip()
    ):
        raise InvalidArgument("--sts-audience must be a non-empty audience without surrounding spaces")
    window = flags.mounter_crash_loop_window
    if window is not None and not 0 <= window <= 3600:
        raise InvalidArgument("--mounter-crash-loop-window must be at least 0 and at most 3600 seconds")
    return PublisherSettings(
        node_id=node_id,
        state_dir=state_dir,
        kubelet_dir=kubelet_dir,
        s3=s3,
        sts_endpoint_url=sts_endpoint_url,
        sts_audience=flags.sts_audience or DEFAULT_AUDIENCE,
        recovery=RecoverySettings() if window is None else RecoverySettings(crash_loop_window_s=window),
        region_configured=region_configured,
        metadata_endpoint=metadata_endpoint,
        mountpoint_pod_metrics=flags.mountpoint_pod_metrics,
    )


def kubernetes_runtime_settings(
    flags: NodeRuntimeFlags, publisher: PublisherSettings | None, kube: KubeApiSettings | None
) -> KubernetesRuntimeSettings | None:
    """The Kubernetes runtime's settings with ``--runtime kubernetes``, else None; InvalidArgument names a
    flag that cannot apply, or the missing API."""
    if publisher is None or flags.runtime != KUBERNETES:
        for name, value in (
            ("--mountpoint-namespace", flags.mountpoint_namespace),
            ("--mountpoint-pod-timeout", flags.mountpoint_pod_timeout),
        ):
            if value is not None:
                raise InvalidArgument(f"{name} applies to --runtime {KUBERNETES} only")
        return None
    if kube is None:
        raise InvalidArgument(
            f"--runtime {KUBERNETES} needs the Kubernetes API: run in a cluster or give --kube-api-url "
            "(not --kube-api off)"
        )
    return KubernetesRuntimeSettings(
        node_name=publisher.node_id,
        kubelet_dir=publisher.kubelet_dir,
        namespace=flags.mountpoint_namespace or DEFAULT_NAMESPACE,
        wait_timeout_s=(
            DEFAULT_WAIT_TIMEOUT_S if flags.mountpoint_pod_timeout is None else flags.mountpoint_pod_timeout
        ),
    )


async def start_publisher(
    settings: PublisherSettings,
    credentials: CredentialProvider,
    kubernetes: KubernetesRuntimeSettings | None = None,
    kube: KubeApiSettings | None = None,
    metrics: NodeMetrics | None = None,
) -> PodMounterPublisher:
    """The publisher on its runtime, after tidying what a previous node plugin left (``recover``);
    ``metrics``: where it counts its Mountpoint Pods, waiting publishes and recoveries."""
    runtime: MountpointPodRuntime
    if kubernetes is not None:
        if kube is None:
            raise InvalidArgument(f"--runtime {KUBERNETES} needs the Kubernetes API")
        runtime = KubernetesRuntime(kubernetes, kube, settings.state_dir)
        await runtime.open()  # lists this node's Mountpoint Pods and attachments: recovery reads them
    else:
        runtime = LocalRuntime(settings.state_dir, metrics=settings.mountpoint_pod_metrics)
    publisher = PodMounterPublisher(settings, runtime, credentials, metrics)
    try:
        await publisher.recover()
    except BaseException:
        await stop_publisher(publisher)
        raise
    return publisher


async def stop_publisher(publisher: PodMounterPublisher) -> None:
    """Stop what the runtime runs in this process (the Kubernetes runtime's watches); Mountpoint Pods and
    mounts stay, for the next node plugin to adopt."""
    if isinstance(publisher.runtime, KubernetesRuntime):
        await publisher.runtime.close()

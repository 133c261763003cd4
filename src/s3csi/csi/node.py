"""The CSI Node service: identity of the node, its capability, and NodePublishVolume /
NodeUnpublishVolume validated in full before a :class:`~s3csi.volume.publish_spec.VolumePublisher` acts."""

from __future__ import annotations

import os

import grpc

from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.csi.requests import required, secret_credentials, volume_capability
from s3csi.csi.unimplemented import unimplemented
from s3csi.errors import InvalidArgument, S3csiError
from s3csi.kube.client import KubeClient
from s3csi.kube.identity import NO_IDENTITY, PodIdentityInputs
from s3csi.kube.lookup import lookup_pod_identity
from s3csi.podmounter.publish_events import failure_event
from s3csi.podmounter.runtime import WorkloadEvents, WorkloadPod
from s3csi.volume.context import BUCKET_NAME, SERVICE_ACCOUNT_TOKENS, AuthenticationSource, VolumeContext
from s3csi.volume.policy import PolicyInput, check_bucket_type, check_staging_cache, effective_mount
from s3csi.volume.publish_spec import PodInfo, PublishSpec, VolumePublisher, pv_name_from_target

_CAPABILITIES = [
    csi_pb2.NodeServiceCapability(
        rpc=csi_pb2.NodeServiceCapability.RPC(type=csi_pb2.NodeServiceCapability.RPC.VOLUME_MOUNT_GROUP)
    )
]


def target_path(path: str, kubelet_dir: str) -> str:
    """``path`` when it is an absolute, normalised path strictly below ``kubelet_dir`` (kubelet only
    ever asks for its own pod directories); InvalidArgument otherwise."""
    shown = repr(path[:200])
    if "\0" in path or not os.path.isabs(path) or os.path.normpath(path) != path:
        raise InvalidArgument(f"target_path {shown} must be an absolute, normalised path")
    if not path.startswith(kubelet_dir.rstrip("/") + "/"):
        raise InvalidArgument(f"target_path {shown} is not below the kubelet directory {kubelet_dir}")
    return path


def publish_spec(
    request: csi_pb2.NodePublishVolumeRequest,
    kubelet_dir: str,
    identity: PodIdentityInputs = NO_IDENTITY,
) -> PublishSpec:
    """Parse and decide: every field checked, the mount policy applied. ``identity``: the annotations of
    the pod and its service account, when the node plugin can read them (``s3csi driver --kube-api``)."""
    volume_id = required(request.volume_id, "volume_id")
    target = target_path(required(request.target_path, "target_path"), kubelet_dir)
    if not request.HasField("volume_capability"):
        raise InvalidArgument("volume_capability is required")
    capability = volume_capability(request.volume_capability, "volume_capability")
    context = VolumeContext.parse(request.volume_context)
    credentials = secret_credentials(request.secrets)
    if context.authentication_source is AuthenticationSource.SECRET and credentials is None:
        raise InvalidArgument(
            "secrets: authenticationSource secret needs a node-publish secret with access_key_id and "
            "secret_access_key (PV spec.csi.nodePublishSecretRef)"
        )
    tokens = request.volume_context.get(SERVICE_ACCOUNT_TOKENS) or None
    if context.authentication_source is AuthenticationSource.POD and tokens is None:
        raise InvalidArgument(
            f"volume_context: authenticationSource pod needs {SERVICE_ACCOUNT_TOKENS} "
            "(CSIDriver spec.tokenRequests)"
        )
    mount = effective_mount(
        PolicyInput(
            mount_flags=capability.mount_flags,
            volume_mount_group=capability.volume_mount_group or None,
            fs_user_annotation=identity.fs_user_annotation,
            volume_fs_user=context.fs_user,
            readonly=request.readonly,
            access_mode=capability.access_mode,
            volume_staged_writes=context.staged_writes,
        )
    )
    check_staging_cache(mount, context.cache)
    check_bucket_type(mount, context.bucket_name)
    return PublishSpec(
        volume_id=volume_id,
        target_path=target,
        pv_name=pv_name_from_target(target, kubelet_dir),
        context=context,
        mount=mount,
        pod=PodInfo.from_volume_context(request.volume_context),
        secrets=dict(request.secrets) if credentials else {},
        service_account_tokens=tokens,
        service_account_role_arn=identity.role_arn_annotation,
    )


class NodeServicer(csi_pb2_grpc.NodeServicer):
    def __init__(
        self,
        node_id: str,
        kubelet_dir: str,
        publisher: VolumePublisher,
        kube: KubeClient | None = None,
        events: WorkloadEvents | None = None,
    ) -> None:
        self._node_id = node_id
        self._kubelet_dir = kubelet_dir
        self._publisher = publisher
        self._kube = kube
        # Where a failed publish is recorded as an Event on its workload pod (the Kubernetes runtime).
        self._events = events

    async def NodeGetInfo(
        self, request: csi_pb2.NodeGetInfoRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.NodeGetInfoResponse:
        return csi_pb2.NodeGetInfoResponse(node_id=self._node_id)

    async def NodeGetCapabilities(
        self, request: csi_pb2.NodeGetCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.NodeGetCapabilitiesResponse:
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=_CAPABILITIES)

    async def NodePublishVolume(
        self, request: csi_pb2.NodePublishVolumeRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.NodePublishVolumeResponse:
        try:
            # Validated in full before the API is asked, then decided again with what it says of the pod.
            spec = publish_spec(request, self._kubelet_dir)
            identity = await self._pod_identity(spec)
            if identity != NO_IDENTITY:
                spec = publish_spec(request, self._kubelet_dir, identity)
            await self._publisher.publish(spec)
        except S3csiError as exc:
            await self._record_failure(request, exc)
            raise
        return csi_pb2.NodePublishVolumeResponse()

    async def _record_failure(self, request: csi_pb2.NodePublishVolumeRequest, error: S3csiError) -> None:
        """A Warning Event on the workload pod naming why its publish failed; one per cause, counted."""
        pod = PodInfo.from_volume_context(request.volume_context)
        if self._events is None or not (pod.namespace and pod.name and pod.uid):
            return
        event = failure_event(
            error, volume_id=request.volume_id, bucket=request.volume_context.get(BUCKET_NAME)
        )
        await self._events.record_event(
            [WorkloadPod(pod.namespace, pod.name, pod.uid)],
            event.reason,
            event.message,
            once_per=event.message,
            type=event.type,
        )

    async def _pod_identity(self, spec: PublishSpec) -> PodIdentityInputs:
        """The pod's annotations from the API; none without an API or without kubelet's pod info
        (CSIDriver ``podInfoOnMount``), as the annotations then cannot be tied to the pod."""
        pod = spec.pod
        if self._kube is None or not (pod.namespace and pod.name and pod.uid):
            return NO_IDENTITY
        return await lookup_pod_identity(
            self._kube,
            namespace=pod.namespace,
            name=pod.name,
            uid=pod.uid,
            service_account=pod.service_account,
            needs_role=spec.context.authentication_source is AuthenticationSource.POD
            and spec.context.role_arn is None,
        )

    async def NodeUnpublishVolume(
        self, request: csi_pb2.NodeUnpublishVolumeRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.NodeUnpublishVolumeResponse:
        volume_id = required(request.volume_id, "volume_id")
        target = target_path(required(request.target_path, "target_path"), self._kubelet_dir)
        await self._publisher.unpublish(volume_id, target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    NodeStageVolume = unimplemented("NodeStageVolume")
    NodeUnstageVolume = unimplemented("NodeUnstageVolume")
    NodeGetVolumeStats = unimplemented("NodeGetVolumeStats")
    NodeExpandVolume = unimplemented("NodeExpandVolume")

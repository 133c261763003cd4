"""The Node service over a real unix socket: every NodePublishVolume/NodeUnpublishVolume field checked
with the spec's codes before the publisher is called, and an honest refusal without a runtime."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.csi.server import serve
from s3csi.errors import NotFound, Unavailable
from s3csi.metrics.node import NodeMetrics
from s3csi.podmounter.publisher import PodMounterPublisher, PublisherSettings
from s3csi.podmounter.runtime.local import LocalRuntime
from s3csi.s3 import Credentials, StaticCredentials
from s3csi.s3.settings import S3Settings
from s3csi.volume.context import (
    MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY,
    MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU,
    SERVICE_ACCOUNT_TOKENS,
    AuthenticationSource,
)
from s3csi.volume.publish_spec import PublishSpec
from tests.integration.csi_support import (
    MODE,
    InProcessDriver,
    RecordingPublisher,
    capability,
    code_of,
    node_settings,
    rpc,
    run,
    start_in_process,
)
from tests.metrics_support import delta, parse

pytestmark = pytest.mark.integration

KUBELET = "/var/lib/kubelet"
TARGET = f"{KUBELET}/pods/0b5d1e2a/volumes/kubernetes.io~csi/pv-data/mount"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
TOKEN_VALUE = "eyJhbGciOiJSUzI1NiJ9.s3csi-test-token-do-not-log"


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def node(tmp_path: Path, publisher: RecordingPublisher) -> Iterator[InProcessDriver]:
    driver = start_in_process(node_settings(tmp_path, KUBELET), publisher)
    yield driver
    driver.stop()


def publish_request(**fields: Any) -> csi_pb2.NodePublishVolumeRequest:
    request: dict[str, Any] = {
        "volume_id": "bucket:data",
        "target_path": TARGET,
        "volume_capability": capability(MODE.MULTI_NODE_MULTI_WRITER),
        "volume_context": {"bucketName": "data"},
    }
    request.update(fields)
    return csi_pb2.NodePublishVolumeRequest(**request)


def publish_code(
    node: InProcessDriver, request: csi_pb2.NodePublishVolumeRequest
) -> tuple[grpc.StatusCode, str]:
    return code_of(lambda: rpc(node.socket_path, "Node", "NodePublishVolume", request))


def test_node_reports_its_id_and_volume_mount_group(node: InProcessDriver) -> None:
    info = run(rpc(node.socket_path, "Node", "NodeGetInfo", csi_pb2.NodeGetInfoRequest()))
    assert info.node_id == "node-1"
    caps = run(rpc(node.socket_path, "Node", "NodeGetCapabilities", csi_pb2.NodeGetCapabilitiesRequest()))
    assert [c.rpc.type for c in caps.capabilities] == [csi_pb2.NodeServiceCapability.RPC.VOLUME_MOUNT_GROUP]


def test_calls_are_counted_by_method_and_code_and_probe_fails_once_the_socket_is_gone(
    tmp_path: Path, publisher: RecordingPublisher
) -> None:
    metrics = NodeMetrics()
    driver = start_in_process(node_settings(tmp_path, KUBELET), publisher, metrics)
    try:
        before = parse(generate_latest(metrics.registry).decode())

        async def scenario() -> tuple[bool, bool]:
            # One channel, connected before the socket goes: as the livenessprobe sidecar keeps its own.
            async with grpc.aio.insecure_channel(f"unix://{driver.socket_path}") as channel:
                identity, node = csi_pb2_grpc.IdentityStub(channel), csi_pb2_grpc.NodeStub(channel)
                ready = (await identity.Probe(csi_pb2.ProbeRequest())).ready.value
                await node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
                await node.NodePublishVolume(publish_request())
                with pytest.raises(grpc.aio.AioRpcError):
                    await node.NodePublishVolume(publish_request(volume_id=""))
                os.unlink(driver.socket_path)
                gone = (await identity.Probe(csi_pb2.ProbeRequest())).ready.value
                return ready, gone

        assert run(scenario()) == (True, False)
        after = parse(generate_latest(metrics.registry).decode())
    finally:
        driver.stop()
    calls = "s3csi_csi_requests_total"
    assert delta(before, after, calls, method="Probe", code="OK") == 2
    assert delta(before, after, calls, method="NodeGetInfo", code="OK") == 1
    assert delta(before, after, calls, method="NodePublishVolume", code="OK") == 1
    assert delta(before, after, calls, method="NodePublishVolume", code="INVALID_ARGUMENT") == 1
    assert delta(before, after, "s3csi_csi_request_duration_seconds_count", method="NodePublishVolume") == 2
    assert len(publisher.published) == 1


def test_a_node_only_plugin_serves_no_controller(node: InProcessDriver) -> None:
    request = csi_pb2.CreateVolumeRequest(name="x", volume_capabilities=[capability()])
    assert code_of(lambda: rpc(node.socket_path, "Controller", "CreateVolume", request))[0] == (
        grpc.StatusCode.UNIMPLEMENTED
    )


@pytest.mark.parametrize(
    ("fields", "expected_in_message"),
    [
        ({"volume_id": ""}, "volume_id is required"),
        ({"target_path": ""}, "target_path is required"),
        ({"volume_capability": None}, "volume_capability is required"),
        ({"volume_capability": capability(block=True)}, "block access"),
        ({"volume_capability": capability(MODE.MULTI_NODE_SINGLE_WRITER)}, "MULTI_NODE_SINGLE_WRITER"),
        ({"volume_capability": capability(MODE.UNKNOWN)}, "UNKNOWN"),
        ({"volume_capability": csi_pb2.VolumeCapability(access_mode=MODE(mode=1))}, "access type"),
        ({"target_path": "/tmp/elsewhere/mount"}, "not below the kubelet directory"),
        ({"target_path": f"{KUBELET}/pods/../../etc/mount"}, "normalised"),
        ({"target_path": "relative/mount"}, "absolute"),
        ({"target_path": KUBELET}, "not below the kubelet directory"),
        ({"target_path": f"{KUBELET}-other/pods/x/mount"}, "not below the kubelet directory"),
        ({"volume_context": {}}, "bucketName is required"),
        ({"volume_context": {"bucketName": "Not_A_Bucket"}}, "bucketName"),
        ({"volume_context": {"bucketName": "data", "authenticationSource": "secret"}}, "node-publish secret"),
        ({"volume_context": {"bucketName": "data", "authenticationSource": "pod"}}, SERVICE_ACCOUNT_TOKENS),
        ({"secrets": {"access_key_id": "AKID"}}, "secret_access_key is required"),
        ({"volume_capability": capability(mount_flags=("--endpoint-url=http://evil",))}, "endpoint-url"),
        ({"volume_capability": capability(mount_flags=("uid=1;rm -rf /",))}, "uid"),
        ({"volume_capability": capability(volume_mount_group="-5")}, "volume_mount_group"),
        ({"volume_context": {"bucketName": "data", "stagedWrites": "yes"}}, "stagedWrites 'yes'"),
        (
            {"volume_context": {"bucketName": "data", "stagedWrites": "true"}},
            "set the volume attribute cache",
        ),
    ],
)
def test_node_publish_refuses_invalid_requests(
    node: InProcessDriver, publisher: RecordingPublisher, fields: dict[str, Any], expected_in_message: str
) -> None:
    request = publish_request(**{k: v for k, v in fields.items() if v is not None})
    if fields.get("volume_capability", "") is None:
        request.ClearField("volume_capability")
    status, details = publish_code(node, request)
    assert (status, expected_in_message in details) == (INVALID, True), details
    assert publisher.published == []


def test_node_publish_hands_the_decided_mount_to_the_publisher_each_time(
    node: InProcessDriver, publisher: RecordingPublisher
) -> None:
    request = publish_request(
        volume_capability=capability(
            MODE.SINGLE_NODE_READER_ONLY, mount_flags=("gid=5", "allow-delete"), volume_mount_group="2000"
        ),
        secrets={"access_key_id": "AKID", "secret_access_key": "s3cr3t-value"},
        volume_context={
            "bucketName": "data",
            "prefix": "team/a",
            "authenticationSource": "secret",
            "csi.storage.k8s.io/pod.name": "web-0",
            "csi.storage.k8s.io/pod.namespace": "shop",
            "csi.storage.k8s.io/pod.uid": "0b5d1e2a",
            "csi.storage.k8s.io/serviceAccount.name": "web",
        },
    )
    for _ in range(2):  # a repeated call reaches the publisher again: idempotency is its contract
        run(rpc(node.socket_path, "Node", "NodePublishVolume", request))
    assert len(publisher.published) == 2 and publisher.published[0] == publisher.published[1]
    spec = publisher.published[0]
    assert (spec.volume_id, spec.target_path, spec.pv_name) == ("bucket:data", TARGET, "pv-data")
    assert (spec.context.bucket_name, spec.context.prefix) == ("data", "team/a/")
    assert spec.context.authentication_source is AuthenticationSource.SECRET
    assert spec.secrets == {"access_key_id": "AKID", "secret_access_key": "s3cr3t-value"}
    assert "s3cr3t-value" not in repr(spec)
    assert (spec.pod.namespace, spec.pod.name, spec.pod.uid, spec.pod.service_account) == (
        "shop",
        "web-0",
        "0b5d1e2a",
        "web",
    )
    assert spec.pod_label == "shop/web-0"
    # fsGroup overrides the PV's gid; read-only from the access mode drops the write permission.
    assert spec.mount.read_only and spec.mount.gid == 2000
    assert "--gid=2000" in spec.mount.args and "--read-only" in spec.mount.args
    assert "--allow-delete" not in spec.mount.args


def test_node_publish_with_pod_credentials_carries_the_tokens_but_never_logs_them(
    node: InProcessDriver, publisher: RecordingPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="s3csi.csi.interceptor")
    context = {"bucketName": "data", "authenticationSource": "pod", SERVICE_ACCOUNT_TOKENS: TOKEN_VALUE}
    secrets = {"access_key_id": "AKID", "secret_access_key": TOKEN_VALUE}
    request = publish_request(volume_context=context, secrets=secrets)
    run(rpc(node.socket_path, "Node", "NodePublishVolume", request))
    assert publisher.published[0].service_account_tokens == TOKEN_VALUE
    (record,) = [r for r in caplog.records if getattr(r, "rpc", None) == "NodePublishVolume"]
    assert (record.code, record.volume_id, record.target_path) == ("OK", "bucket:data", TARGET)  # type: ignore[attr-defined]
    assert record.request["volume_context"][SERVICE_ACCOUNT_TOKENS] == "***"  # type: ignore[attr-defined]
    assert record.request["secrets"] == {"access_key_id": "***", "secret_access_key": "***"}  # type: ignore[attr-defined]
    assert TOKEN_VALUE not in caplog.text
    assert all(TOKEN_VALUE not in repr(vars(r)) for r in caplog.records)


def test_node_unpublish_validates_and_is_passed_on_each_time(
    node: InProcessDriver, publisher: RecordingPublisher
) -> None:
    unpublish = csi_pb2.NodeUnpublishVolumeRequest
    for request, expected in (
        (unpublish(target_path=TARGET), INVALID),
        (unpublish(volume_id="bucket:data"), INVALID),
        (unpublish(volume_id="bucket:data", target_path="/etc/passwd"), INVALID),
    ):
        assert (
            code_of(lambda r=request: rpc(node.socket_path, "Node", "NodeUnpublishVolume", r))[0] == expected
        )
    for _ in range(2):
        run(
            rpc(
                node.socket_path,
                "Node",
                "NodeUnpublishVolume",
                unpublish(volume_id="bucket:data", target_path=TARGET),
            )
        )
    assert publisher.unpublished == [("bucket:data", TARGET)] * 2


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("NodeStageVolume", csi_pb2.NodeStageVolumeRequest(volume_id="v")),
        ("NodeUnstageVolume", csi_pb2.NodeUnstageVolumeRequest(volume_id="v")),
        ("NodeGetVolumeStats", csi_pb2.NodeGetVolumeStatsRequest(volume_id="v")),
        ("NodeExpandVolume", csi_pb2.NodeExpandVolumeRequest(volume_id="v")),
    ],
)
def test_other_node_rpcs_are_unimplemented(node: InProcessDriver, method: str, request_: Any) -> None:
    assert (
        code_of(lambda: rpc(node.socket_path, "Node", method, request_))[0] == grpc.StatusCode.UNIMPLEMENTED
    )


def test_a_node_service_without_a_publisher_does_not_start(tmp_path: Path) -> None:
    # A node service that could only refuse every publish must not listen: serve() refuses it at once.
    settings = node_settings(tmp_path, KUBELET)
    credentials = StaticCredentials(Credentials("unused", "unused"))
    with pytest.raises(ValueError, match="serving the node service needs a volume publisher"):
        asyncio.run(serve(settings, credentials, None, asyncio.Event()))
    assert not os.path.lexists(settings.socket_path)


class FailingPublisher(RecordingPublisher):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def publish(self, spec: PublishSpec) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("a bug"), grpc.StatusCode.INTERNAL),
        (KeyError("x"), grpc.StatusCode.INTERNAL),
        (Unavailable("the Mountpoint Pod did not start"), grpc.StatusCode.UNAVAILABLE),
        (NotFound("no such bucket"), grpc.StatusCode.NOT_FOUND),
    ],
)
def test_failures_below_the_servicer_become_their_status_never_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, error: BaseException, expected: grpc.StatusCode
) -> None:
    driver = start_in_process(node_settings(tmp_path, KUBELET), FailingPublisher(error))
    try:
        status, details = publish_code(driver, publish_request())
    finally:
        driver.stop()
    assert status == expected
    tracebacks = [r for r in caplog.records if r.name == "s3csi.csi.interceptor" and r.exc_info]
    if expected is grpc.StatusCode.INTERNAL:
        assert details == f"internal error in NodePublishVolume: {type(error).__name__}"
        assert tracebacks and tracebacks[0].exc_info and tracebacks[0].exc_info[1] is error
    else:
        assert details == str(error) and not tracebacks


def test_the_local_runtime_refuses_a_volume_that_sizes_its_mountpoint_pod(tmp_path: Path) -> None:
    # A local Mountpoint Pod is a process of the node plugin: it has no requests or limits to apply, so a
    # volume's mountpointContainerResources* attributes are refused, never parsed and ignored.
    settings = PublisherSettings(
        node_id="node-1",
        state_dir=str(tmp_path / "state"),
        kubelet_dir=KUBELET,
        s3=S3Settings(region="us-east-1", endpoint_url="http://127.0.0.1:1", force_path_style=True),
    )
    local = PodMounterPublisher(
        settings, LocalRuntime(settings.state_dir), StaticCredentials(Credentials("a", "b"))
    )
    local.prepare()
    driver = start_in_process(node_settings(tmp_path, KUBELET), local)
    try:
        context = {
            "bucketName": "data",
            MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY: "2Gi",
            MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU: "1",
        }
        status, details = publish_code(driver, publish_request(volume_context=context))
    finally:
        driver.stop()
    assert status == INVALID
    assert details.startswith(
        f"volume attribute {MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU} sets the Mountpoint Pod's resources"
    )
    assert "--runtime kubernetes" in details
    assert local.runtime.list() == [] and not list((tmp_path / "state" / "sources").iterdir())

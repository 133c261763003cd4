"""The Identity and Controller services of a real ``s3csi driver`` process, over its unix socket, against
the embedded S3 server; the boto3 client ``s3`` is the independent witness of what reached the store."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest

from bench.proxy import CountingProxy
from s3csi import __version__
from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.provisioning.naming import bucket_name_for, leaf_for
from tests.integration.csi_support import MODE, DriverProcess, capability, code_of, rpc, run, start_driver

pytestmark = pytest.mark.integration

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SECRET_KEY_VALUE = "s3csi-test-SECRET-do-not-log-4f1c9a"
SECRETS = {"access_key_id": "AKIDTESTONLY", "secret_access_key": SECRET_KEY_VALUE}


@pytest.fixture(scope="module")
def driver(s3_server: EmbeddedS3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriverProcess]:
    directory = tmp_path_factory.mktemp("controller")
    process = start_driver(
        directory,
        s3_server.client_env(),
        "--mode=all",
        f"--s3-endpoint-url={s3_server.endpoint_url}",
        "--debug",
        "--log-format=json",
    )
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def proxied_driver(
    s3_server: EmbeddedS3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DriverProcess, CountingProxy]]:
    """A driver whose S3 endpoint is a byte-transparent proxy that records each request it forwards:
    the witness of what the driver asked the store, where the store's end state cannot tell."""
    upstream_port = urlsplit(s3_server.endpoint_url).port
    assert upstream_port is not None
    with CountingProxy(upstream_port) as proxy:
        process = start_driver(
            tmp_path_factory.mktemp("proxied"),
            s3_server.client_env(),
            "--mode=controller",
            f"--s3-endpoint-url={proxy.endpoint_url}",
        )
        try:
            yield process, proxy
        finally:
            process.terminate()


def unique(prefix: str = "pvc") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def create_request(name: str, **fields: Any) -> csi_pb2.CreateVolumeRequest:
    fields.setdefault("volume_capabilities", [capability()])
    return csi_pb2.CreateVolumeRequest(name=name, **fields)


def create(driver: DriverProcess, request: csi_pb2.CreateVolumeRequest) -> csi_pb2.CreateVolumeResponse:
    response: csi_pb2.CreateVolumeResponse = run(
        rpc(driver.socket_path, "Controller", "CreateVolume", request)
    )
    return response


def delete(driver: DriverProcess, volume_id: str, **fields: Any) -> None:
    run(
        rpc(
            driver.socket_path,
            "Controller",
            "DeleteVolume",
            csi_pb2.DeleteVolumeRequest(volume_id=volume_id, **fields),
        )
    )


def code(driver: DriverProcess, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    return code_of(lambda: rpc(driver.socket_path, "Controller", method, request))


def bucket_exists(s3: Any, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in s3.list_buckets()["Buckets"])


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


# ---- Identity ---------------------------------------------------------------------------------------


def test_identity_names_the_driver_and_offers_the_controller_service(driver: DriverProcess) -> None:
    info = run(rpc(driver.socket_path, "Identity", "GetPluginInfo", csi_pb2.GetPluginInfoRequest()))
    assert (info.name, info.vendor_version) == ("s3.csi.s3csi.io", __version__)
    caps = run(
        rpc(driver.socket_path, "Identity", "GetPluginCapabilities", csi_pb2.GetPluginCapabilitiesRequest())
    )
    assert [c.service.type for c in caps.capabilities] == [
        csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE
    ]
    probe = run(rpc(driver.socket_path, "Identity", "Probe", csi_pb2.ProbeRequest()))
    assert probe.HasField("ready") and probe.ready.value


def test_controller_offers_create_delete_volume_only(driver: DriverProcess) -> None:
    caps = run(
        rpc(
            driver.socket_path,
            "Controller",
            "ControllerGetCapabilities",
            csi_pb2.ControllerGetCapabilitiesRequest(),
        )
    )
    assert [c.rpc.type for c in caps.capabilities] == [
        csi_pb2.ControllerServiceCapability.RPC.CREATE_DELETE_VOLUME
    ]


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("ControllerPublishVolume", csi_pb2.ControllerPublishVolumeRequest(volume_id="v", node_id="n")),
        ("ControllerUnpublishVolume", csi_pb2.ControllerUnpublishVolumeRequest(volume_id="v")),
        ("ListVolumes", csi_pb2.ListVolumesRequest()),
        ("GetCapacity", csi_pb2.GetCapacityRequest()),
        ("CreateSnapshot", csi_pb2.CreateSnapshotRequest(source_volume_id="v", name="s")),
        ("DeleteSnapshot", csi_pb2.DeleteSnapshotRequest(snapshot_id="s")),
        ("ListSnapshots", csi_pb2.ListSnapshotsRequest()),
        ("GetSnapshot", csi_pb2.GetSnapshotRequest(snapshot_id="s")),
        ("ControllerExpandVolume", csi_pb2.ControllerExpandVolumeRequest(volume_id="v")),
        ("ControllerGetVolume", csi_pb2.ControllerGetVolumeRequest(volume_id="v")),
        ("ControllerModifyVolume", csi_pb2.ControllerModifyVolumeRequest(volume_id="v")),
    ],
)
def test_other_controller_rpcs_are_unimplemented(driver: DriverProcess, method: str, request_: Any) -> None:
    status, details = code(driver, method, request_)
    assert status == grpc.StatusCode.UNIMPLEMENTED
    assert method in details


# ---- CreateVolume validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected_in_message"),
    [
        ({"name": ""}, "name is required"),
        ({"volume_capabilities": []}, "volume_capabilities is required"),
        ({"volume_capabilities": [capability(block=True)]}, "block access is not supported"),
        ({"volume_capabilities": [capability(MODE.MULTI_NODE_SINGLE_WRITER)]}, "MULTI_NODE_SINGLE_WRITER"),
        ({"volume_capabilities": [capability(MODE.SINGLE_NODE_SINGLE_WRITER)]}, "SINGLE_NODE_SINGLE_WRITER"),
        ({"volume_capabilities": [capability(MODE.UNKNOWN)]}, "UNKNOWN"),
        ({"volume_capabilities": [csi_pb2.VolumeCapability(access_mode=MODE(mode=1))]}, "access type"),
        (
            {"volume_capabilities": [csi_pb2.VolumeCapability(mount=csi_pb2.VolumeCapability.MountVolume())]},
            "access_mode",
        ),
        ({"parameters": {"colour": "blue"}}, "colour"),
        ({"parameters": {"provisioningMode": "disk-per-volume"}}, "provisioningMode"),
        ({"parameters": {"bucketName": "somebucket"}}, "bucketName"),
        ({"parameters": {"provisioningMode": "prefix-per-volume"}}, "bucketName is required"),
        ({"parameters": {"authenticationSource": "magic"}}, "authenticationSource"),
        ({"parameters": {"fsUser": "-1"}}, "fsUser"),
        ({"parameters": {"stagedWrites": "true"}}, "set the volume attribute cache"),
        ({"parameters": {"cache": "tmpfs"}}, "volume attribute cache 'tmpfs'"),
        ({"capacity_range": csi_pb2.CapacityRange(required_bytes=-1)}, "negative"),
        (
            {"capacity_range": csi_pb2.CapacityRange(required_bytes=10, limit_bytes=5)},
            "larger than limit_bytes",
        ),
        (
            {"volume_content_source": csi_pb2.VolumeContentSource(snapshot={"snapshot_id": "snap-1"})},
            "volume_content_source",
        ),
        ({"mutable_parameters": {"iops": "3000"}}, "mutable_parameters"),
        # StorageClass mountOptions every publish would refuse are refused now, naming the option.
        (
            {"volume_capabilities": [capability(mount_flags=("endpoint-url=http://evil.example",))]},
            "mount_flags (the StorageClass's mountOptions): mount option --endpoint-url is not allowed",
        ),
        ({"volume_capabilities": [capability(mount_flags=("uid=1;rm",))]}, "--uid must be"),
        ({"volume_capabilities": [capability(), capability(mount_flags=("cache=/",))]}, "[1].mount"),
        ({"volume_capabilities": [capability(mount_flags=("sse-kms-key-id=alias/k",))]}, "--sse-kms-key-id"),
        (
            {
                "parameters": {"provisioningMode": "prefix-per-volume", "bucketName": "some-bucket"},
                "volume_capabilities": [capability(mount_flags=("prefix=elsewhere/",))],
            },
            "--prefix cannot be set for a prefix-per-volume",
        ),
        ({"secrets": {"access_key_id": "AKID"}}, "secret_access_key is required"),
        ({"secrets": {**SECRETS, "acess_key": SECRET_KEY_VALUE}}, "acess_key"),
        ({"secrets": {**SECRETS, "session_token": "tok en"}}, "session_token"),
    ],
)
def test_create_volume_refuses_invalid_requests(
    driver: DriverProcess, s3: Any, fields: dict[str, Any], expected_in_message: str
) -> None:
    name = fields.pop("name", unique())
    for _ in range(2):  # called twice: refused twice, nothing made
        status, details = code(driver, "CreateVolume", create_request(name, **fields))
        assert (status, expected_in_message in details) == (INVALID, True), details
    assert SECRET_KEY_VALUE not in details
    if name:
        assert not bucket_exists(s3, bucket_name_for(name))


# ---- bucket-per-volume ------------------------------------------------------------------------------


def test_bucket_per_volume_create_is_idempotent_and_delete_removes_everything(
    driver: DriverProcess, s3: Any
) -> None:
    name = unique()
    request = create_request(
        name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=5 * 1024**3),
        parameters={"authenticationSource": "secret", "csi.storage.k8s.io/pvc/name": "data"},
        volume_capabilities=[capability(MODE.SINGLE_NODE_WRITER), capability(MODE.MULTI_NODE_READER_ONLY)],
    )
    first, second = create(driver, request), create(driver, request)
    assert first == second
    bucket = bucket_name_for(name)
    assert first.volume.volume_id == f"bucket:{bucket}"
    assert first.volume.capacity_bytes == 5 * 1024**3
    assert dict(first.volume.volume_context) == {"bucketName": bucket, "authenticationSource": "secret"}
    assert keys(s3, bucket) == [f".s3csi-volumes/{bucket}.json"]

    with ThreadPoolExecutor(8) as pool:  # more than one listing page and one DeleteObjects batch
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"dir/{i:04}", Body=b"x"), range(1005)))
    delete(driver, first.volume.volume_id)
    assert not bucket_exists(s3, bucket)
    delete(driver, first.volume.volume_id)  # already gone: still OK


def test_same_name_with_other_parameters_is_already_exists_even_for_a_new_controller(
    driver: DriverProcess, s3_server: EmbeddedS3Server, tmp_path: Path
) -> None:
    name = unique()
    volume = create(driver, create_request(name, capacity_range=csi_pb2.CapacityRange(required_bytes=1024)))
    status, details = code(
        driver,
        "CreateVolume",
        create_request(name, capacity_range=csi_pb2.CapacityRange(required_bytes=2048)),
    )
    assert status == grpc.StatusCode.ALREADY_EXISTS, details
    # A second controller process knows only what is in the store.
    other = start_driver(
        tmp_path, s3_server.client_env(), "--mode=controller", f"--s3-endpoint-url={s3_server.endpoint_url}"
    )
    try:
        conflict = create_request(name, capacity_range=csi_pb2.CapacityRange(required_bytes=1024))
        conflict.parameters["authenticationSource"] = "pod"
        assert code_of(lambda: rpc(other.socket_path, "Controller", "CreateVolume", conflict))[0] == (
            grpc.StatusCode.ALREADY_EXISTS
        )
        same = create_request(name, capacity_range=csi_pb2.CapacityRange(required_bytes=1024))
        assert run(rpc(other.socket_path, "Controller", "CreateVolume", same)) == volume
    finally:
        assert other.terminate() == 0
    delete(driver, volume.volume.volume_id)


def test_create_volume_with_a_maximum_length_name(driver: DriverProcess, s3: Any) -> None:
    name = "N" * 60 + "_" + "é" * 32 + "x" * 3  # 128 bytes in UTF-8, with characters no bucket name has
    assert len(name.encode()) == 128
    volume = create(driver, create_request(name))
    assert bucket_exists(s3, bucket_name_for(name))
    assert len(volume.volume.volume_id.encode()) <= 128
    delete(driver, volume.volume.volume_id)


# ---- prefix-per-volume ------------------------------------------------------------------------------


def test_prefix_per_volume_lives_in_an_existing_bucket_and_delete_removes_only_its_prefix(
    driver: DriverProcess, s3: Any, bucket: str
) -> None:
    name = unique()
    parameters = {"provisioningMode": "prefix-per-volume", "bucketName": bucket}
    volume = create(driver, create_request(name, parameters=parameters)).volume
    leaf = leaf_for(name)
    assert volume.volume_id == f"prefix:{bucket}:{leaf}"
    assert dict(volume.volume_context) == {
        "bucketName": bucket,
        "prefix": f"{leaf}/",
        "authenticationSource": "driver",
    }
    assert create(driver, create_request(name, parameters=parameters)).volume == volume
    s3.put_object(Bucket=bucket, Key=f"{leaf}/a/b.txt", Body=b"data")
    s3.put_object(Bucket=bucket, Key=f"{leaf}-sibling/keep.txt", Body=b"other volume")
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"not ours")
    validate = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume.volume_id, volume_context=volume.volume_context, volume_capabilities=[capability()]
    )
    assert run(rpc(driver.socket_path, "Controller", "ValidateVolumeCapabilities", validate)).HasField(
        "confirmed"
    )

    delete(driver, volume.volume_id)
    assert sorted(keys(s3, bucket)) == ["keep.txt", f"{leaf}-sibling/keep.txt"]
    delete(driver, volume.volume_id)
    assert code(driver, "ValidateVolumeCapabilities", validate)[0] == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("mode", ["bucket-per-volume", "prefix-per-volume"])
def test_delete_volume_aborts_multipart_uploads_in_progress(
    proxied_driver: tuple[DriverProcess, CountingProxy], s3: Any, bucket: str, mode: str
) -> None:
    driver, proxy = proxied_driver
    parameters = {"provisioningMode": mode} | ({"bucketName": bucket} if mode == "prefix-per-volume" else {})
    volume = create(driver, create_request(unique(), parameters=parameters)).volume
    volume_bucket, prefix = volume.volume_context["bucketName"], volume.volume_context.get("prefix", "")
    started = {}
    for key in (f"{prefix}dir/big file+ü%", f"{prefix}dir/big file+ü%", f"{prefix}other"):
        upload_id = s3.create_multipart_upload(Bucket=volume_bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=volume_bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part one")
        started[upload_id] = key
    s3.put_object(Bucket=volume_bucket, Key=f"{prefix}dir/done", Body=b"x")
    kept = []
    if prefix:  # uploads of the bucket's other users, beside and outside the volume's prefix
        for key in (f"{prefix.rstrip('/')}-sibling/keep", "keep"):
            kept.append((key, s3.create_multipart_upload(Bucket=volume_bucket, Key=key)["UploadId"]))

    proxy.reset()
    delete(driver, volume.volume_id)
    requests = proxy.requests()
    aborted = {
        parse_qs(urlsplit(target).query).get("uploadId", [""])[0]: n
        for n, (method, _, target) in enumerate(r.partition(" ") for r in requests)
        if method == "DELETE" and "uploadId=" in target
    }
    assert set(aborted) == set(started), requests
    if prefix:
        remaining = s3.list_multipart_uploads(Bucket=volume_bucket).get("Uploads", [])
        assert sorted((u["Key"], u["UploadId"]) for u in remaining) == sorted(kept)
        assert keys(s3, volume_bucket) == []
    else:
        # moto deletes a bucket with uploads in progress (other stores refuse): the wire shows that
        # every abort came before DeleteBucket.
        assert max(aborted.values()) < requests.index(f"DELETE /{volume_bucket}")
        assert not bucket_exists(s3, volume_bucket)
    delete(driver, volume.volume_id)  # already gone: still OK


def test_prefix_per_volume_in_a_missing_bucket_fails(driver: DriverProcess) -> None:
    parameters = {"provisioningMode": "prefix-per-volume", "bucketName": f"missing-{uuid.uuid4().hex[:12]}"}
    status, details = code(driver, "CreateVolume", create_request(unique(), parameters=parameters))
    assert status == grpc.StatusCode.FAILED_PRECONDITION
    assert "does not exist" in details


# ---- DeleteVolume and ValidateVolumeCapabilities ----------------------------------------------------


def test_delete_volume_needs_an_id_and_accepts_unknown_ones(driver: DriverProcess) -> None:
    assert code(driver, "DeleteVolume", csi_pb2.DeleteVolumeRequest())[0] == INVALID
    for unknown in (
        "reallyfakevolumeid",
        "bucket:UPPER",
        "prefix:bucket-x:",
        f"bucket:{bucket_name_for(unique())}",
    ):
        delete(driver, unknown)


def test_validate_volume_capabilities(driver: DriverProcess) -> None:
    volume = create(driver, create_request(unique())).volume
    validate = csi_pb2.ValidateVolumeCapabilitiesRequest
    cases = [
        (validate(volume_capabilities=[capability()]), INVALID),
        (validate(volume_id=volume.volume_id), INVALID),
        (
            validate(volume_id="reallyfakevolumeid", volume_capabilities=[capability()]),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            validate(volume_id=f"bucket:{bucket_name_for(unique())}", volume_capabilities=[capability()]),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            validate(
                volume_id=volume.volume_id,
                volume_context={"bucketName": "x"},
                volume_capabilities=[capability()],
            ),
            INVALID,
        ),
    ]
    for request, expected in cases:
        assert code(driver, "ValidateVolumeCapabilities", request)[0] == expected, request
    ok = run(
        rpc(
            driver.socket_path,
            "Controller",
            "ValidateVolumeCapabilities",
            validate(
                volume_id=volume.volume_id,
                volume_context=volume.volume_context,
                volume_capabilities=[capability()],
            ),
        )
    )
    assert list(ok.confirmed.volume_capabilities) == [capability()]
    assert dict(ok.confirmed.volume_context) == dict(volume.volume_context)
    unsupported = run(
        rpc(
            driver.socket_path,
            "Controller",
            "ValidateVolumeCapabilities",
            validate(volume_id=volume.volume_id, volume_capabilities=[capability(), capability(block=True)]),
        )
    )
    assert not unsupported.HasField("confirmed") and "block" in unsupported.message
    delete(driver, volume.volume_id)


# ---- secrets ----------------------------------------------------------------------------------------


def test_request_secrets_are_used_and_never_logged(driver: DriverProcess, s3: Any) -> None:
    name = unique()
    volume = create(driver, create_request(name, secrets=SECRETS)).volume
    assert bucket_exists(s3, bucket_name_for(name))
    delete(driver, volume.volume_id, secrets=SECRETS)
    assert not bucket_exists(s3, bucket_name_for(name))
    log = driver.log()
    assert SECRET_KEY_VALUE not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("rpc") == "CreateVolume" and line.get("volume_name") == name]
    assert logged and logged[0]["request"]["secrets"] == {"access_key_id": "***", "secret_access_key": "***"}
    assert logged[0]["code"] == "OK" and logged[0]["volume_id"] == volume.volume_id


# ---- a storm of concurrent calls --------------------------------------------------------------------


def test_a_storm_of_creates_and_deletes_leaves_the_store_as_the_last_calls_say(
    driver: DriverProcess, s3: Any
) -> None:
    rng = random.Random(20261127)
    run_id = uuid.uuid4().hex[:8]
    names = [f"storm-{run_id}-{i}" for i in range(20)]
    ids = {name: f"bucket:{bucket_name_for(name)}" for name in names}
    calls = [(rng.choice(names), rng.choice(("CreateVolume", "DeleteVolume"))) for _ in range(200)]

    async def storm() -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(f"unix://{driver.socket_path}") as channel:
            from s3csi.csi.proto import csi_pb2_grpc

            stub = csi_pb2_grpc.ControllerStub(channel)

            async def one(name: str, method: str) -> grpc.StatusCode:
                try:
                    if method == "CreateVolume":
                        await stub.CreateVolume(create_request(name), timeout=120)
                    else:
                        await stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=ids[name]), timeout=120)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            return await asyncio.gather(*(one(name, method) for name, method in calls))

    codes = run(storm())
    assert set(codes) == {grpc.StatusCode.OK}
    # The driver logs each call as it completes; calls on one volume are serialised, so the log's
    # order is the order in which they took effect.
    last: dict[str, str] = {}
    for line in driver.log().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if (
                entry.get("rpc") in ("CreateVolume", "DeleteVolume")
                and entry.get("volume_id") in ids.values()
            ):
                last[entry["volume_id"]] = entry["rpc"]
    assert set(last) == {ids[name] for name in {n for n, _ in calls}}
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"storm-{run_id}")}
    expected = {
        volume_id.removeprefix("bucket:")
        for volume_id, rpc_name in last.items()
        if rpc_name == "CreateVolume"
    }
    assert existing == expected
    for bucket in existing:
        assert keys(s3, bucket) == [f".s3csi-volumes/{bucket}.json"]
    for name in names:
        delete(driver, ids[name])


# ---- DeleteVolume deletes only what the record proves (docs/security.md, "Deletion needs proof") -------


def warnings_about(driver: DriverProcess, volume_id: str) -> list[str]:
    """The driver's WARNING lines that name ``volume_id``: why a DeleteVolume kept what it found."""
    entries = [json.loads(line) for line in driver.log().splitlines() if line.startswith("{")]
    return [
        entry["message"]
        for entry in entries
        if entry.get("level") == "WARNING" and volume_id in entry.get("message", "")
    ]


def snapshot(s3: Any, bucket: str) -> dict[str, bytes]:
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys(s3, bucket)}


def test_delete_volume_of_a_foreign_bucket_keeps_the_bucket_and_its_objects(
    driver: DriverProcess, s3: Any
) -> None:
    precious = f"precious-data-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=precious)
    for key in ("report.pdf", "home/alice/notes.txt", ".s3csi-volumes/unrelated.json"):
        s3.put_object(Bucket=precious, Key=key, Body=f"data of {key}".encode())
    before = snapshot(s3, precious)
    volume_id = f"bucket:{precious}"
    delete(driver, volume_id)  # OK: nothing of this driver's is there
    delete(driver, volume_id)  # called twice: still OK, still untouched
    assert bucket_exists(s3, precious) and snapshot(s3, precious) == before
    assert any("no record" in message for message in warnings_about(driver, volume_id))


def test_delete_volume_of_a_foreign_prefix_keeps_its_objects(
    driver: DriverProcess, s3: Any, bucket: str
) -> None:
    for key in ("home/alice/notes.txt", "home/bob/.bashrc", "home-other/x", "top.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"someone else's")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="home/big.iso")["UploadId"]
    before = snapshot(s3, bucket)
    volume_id = f"prefix:{bucket}:home"
    delete(driver, volume_id)
    delete(driver, volume_id)
    assert snapshot(s3, bucket) == before
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [upload_id]
    assert warnings_about(driver, volume_id)


@pytest.mark.parametrize(
    "record",
    [
        "another volume's record",
        "right id, name that does not derive it",
        "right id and name, other bucket in its attributes",
        "right id and name, other prefix in its attributes",
        "not JSON",
        "a JSON list",
    ],
)
@pytest.mark.parametrize("mode", ["bucket-per-volume", "prefix-per-volume"])
def test_delete_volume_with_a_record_that_proves_nothing_keeps_everything(
    driver: DriverProcess, s3: Any, bucket: str, mode: str, record: str
) -> None:
    """A record at the volume's key that does not name exactly this volume (planted, copied from
    another volume, or corrupt) is no proof: nothing is deleted."""
    donor = create(
        driver,
        create_request(
            unique(),
            parameters={"provisioningMode": mode}
            | ({"bucketName": bucket} if mode == "prefix-per-volume" else {}),
        ),
    ).volume
    donor_bucket = donor.volume_context["bucketName"]
    donor_key = keys(s3, donor_bucket, ".s3csi-volumes/")[0]
    donor_record = json.loads(s3.get_object(Bucket=donor_bucket, Key=donor_key)["Body"].read())
    # The victim: a bucket or prefix named like one of this driver's volumes, with someone's data.
    victim_name = unique("victim")
    if mode == "bucket-per-volume":
        victim_bucket, leaf = bucket_name_for(victim_name), None
        s3.create_bucket(Bucket=victim_bucket)
        volume_id, record_key, prefix = f"bucket:{victim_bucket}", f".s3csi-volumes/{victim_bucket}.json", ""
    else:
        victim_bucket, leaf = bucket, leaf_for(victim_name)
        volume_id, record_key, prefix = f"prefix:{bucket}:{leaf}", f".s3csi-volumes/{leaf}.json", f"{leaf}/"
    forged = dict(donor_record, volumeId=volume_id, name=victim_name)
    forged["volumeContext"] = dict(forged["volumeContext"], bucketName=victim_bucket)
    if leaf:
        forged["volumeContext"]["prefix"] = prefix
    body = {
        "another volume's record": json.dumps(donor_record),
        "right id, name that does not derive it": json.dumps(dict(forged, name="pvc-someone-else")),
        "right id and name, other bucket in its attributes": json.dumps(
            dict(forged, volumeContext=dict(forged["volumeContext"], bucketName="someone-elses-bucket"))
        ),
        "right id and name, other prefix in its attributes": json.dumps(
            dict(forged, volumeContext=dict(forged["volumeContext"], prefix="elsewhere/"))
        ),
        "not JSON": "{not json",
        "a JSON list": json.dumps([volume_id]),
    }[record]
    s3.put_object(Bucket=victim_bucket, Key=record_key, Body=body.encode())
    s3.put_object(Bucket=victim_bucket, Key=f"{prefix}precious.txt", Body=b"keep me")
    before = snapshot(s3, victim_bucket)

    delete(driver, volume_id)
    delete(driver, volume_id)
    assert bucket_exists(s3, victim_bucket) and snapshot(s3, victim_bucket) == before
    assert warnings_about(driver, volume_id)
    validate = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume_id, volume_capabilities=[capability()]
    )
    assert code(driver, "ValidateVolumeCapabilities", validate)[0] == grpc.StatusCode.NOT_FOUND
    delete(driver, donor.volume_id)  # the donor itself is proven and goes
    if mode == "bucket-per-volume":
        assert not bucket_exists(s3, donor_bucket)
        s3.delete_object(Bucket=victim_bucket, Key=record_key)
        s3.delete_object(Bucket=victim_bucket, Key="precious.txt")
        s3.delete_bucket(Bucket=victim_bucket)
    else:
        assert not keys(s3, bucket, donor_key)


@pytest.mark.parametrize("mode", ["bucket-per-volume", "prefix-per-volume"])
def test_delete_volume_whose_record_a_user_deleted_keeps_the_data(
    driver: DriverProcess, s3: Any, bucket: str, mode: str
) -> None:
    """A workload that can delete in its bucket-per-volume volume can delete ``.s3csi-volumes/``: the
    driver then cannot prove the bucket is its own, and leaves it (and its data) to the operator."""
    parameters = {"provisioningMode": mode} | ({"bucketName": bucket} if mode == "prefix-per-volume" else {})
    volume = create(driver, create_request(unique(), parameters=parameters)).volume
    volume_bucket, prefix = volume.volume_context["bucketName"], volume.volume_context.get("prefix", "")
    s3.put_object(Bucket=volume_bucket, Key=f"{prefix}work/result.csv", Body=b"1,2,3")
    for key in keys(s3, volume_bucket, ".s3csi-volumes/"):
        s3.delete_object(Bucket=volume_bucket, Key=key)
    before = snapshot(s3, volume_bucket)
    delete(driver, volume.volume_id)
    delete(driver, volume.volume_id)
    assert bucket_exists(s3, volume_bucket) and snapshot(s3, volume_bucket) == before
    assert any("no record" in message for message in warnings_about(driver, volume.volume_id))

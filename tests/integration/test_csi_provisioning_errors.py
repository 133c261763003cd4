"""Real failures reach the CO as errors, never as success: access denied by the store's IAM, and an
S3 endpoint that is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.provisioning.naming import bucket_name_for
from s3csi.s3 import Credentials
from tests.boto_support import boto3_client
from tests.integration.csi_support import (
    DriverProcess,
    capability,
    code_of,
    driver_factory,
    rpc,
    run,
    wait_serving,
)

pytestmark = pytest.mark.integration
__all__ = ["driver_factory"]

# IAM calls the test makes before moto starts checking every request (see iam_server).
BOOTSTRAP_ACTIONS = 8
ALLOW_S3 = '{"Effect":"Allow","Action":"s3:*","Resource":"*"}'
DENY_ABORT = '{"Effect":"Deny","Action":"s3:AbortMultipartUpload","Resource":"*"}'
POLICIES = {
    "admin": f'{{"Version":"2012-10-17","Statement":[{ALLOW_S3}]}}',
    "no-abort": f'{{"Version":"2012-10-17","Statement":[{ALLOW_S3},{DENY_ABORT}]}}',
}
IamUsers = tuple[EmbeddedS3Server, dict[str, dict[str, str]]]


@pytest.fixture(scope="module")
def iam_server() -> Iterator[IamUsers]:
    """A moto server enforcing IAM, and the secrets of its users by name: ``admin`` (s3:*), ``nobody``
    (no right) and ``no-abort`` (s3:* but AbortMultipartUpload)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", str(BOOTSTRAP_ACTIONS))
        server = EmbeddedS3Server.start()
    try:
        iam = boto3_client("iam", server, Credentials("bootstrap", "bootstrap"))
        keys = {}
        for user in ("admin", "nobody", "no-abort"):
            iam.create_user(UserName=user)
            created = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {
                "access_key_id": created["AccessKeyId"],
                "secret_access_key": created["SecretAccessKey"],
            }
        for user, policy in POLICIES.items():
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=policy)
        yield server, keys
    finally:
        server.stop()


def env_for(server: EmbeddedS3Server, secrets: dict[str, str]) -> dict[str, str]:
    return {
        **server.client_env(),
        "AWS_ACCESS_KEY_ID": secrets["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": secrets["secret_access_key"],
    }


def create_request(name: str, **fields: Any) -> csi_pb2.CreateVolumeRequest:
    return csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[capability()], **fields)


def call(driver: DriverProcess, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    return code_of(lambda: rpc(driver.socket_path, "Controller", method, request))


def test_access_denied_is_permission_denied_and_deletes_nothing(
    iam_server: IamUsers, driver_factory: Any
) -> None:
    server, users = iam_server
    admin, nobody = users["admin"], users["nobody"]
    witness = boto3_client("s3", server, Credentials(admin["access_key_id"], admin["secret_access_key"]))
    # The driver's own credentials are the user without rights.
    driver = driver_factory(env_for(server, nobody), "--mode=controller")
    name = "pvc-denied"
    bucket = bucket_name_for(name)

    status, details = call(driver, "CreateVolume", create_request(name))
    assert status == grpc.StatusCode.PERMISSION_DENIED, details
    assert "AccessDenied" in details

    volume = run(
        rpc(driver.socket_path, "Controller", "CreateVolume", create_request(name, secrets=admin))
    ).volume
    witness.put_object(Bucket=bucket, Key="precious.txt", Body=b"keep me")

    for secrets in ({}, nobody, {"access_key_id": "AKIDUNKNOWN", "secret_access_key": "wrong"}):
        request = csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id, secrets=secrets)
        status, details = call(driver, "DeleteVolume", request)
        assert status == grpc.StatusCode.PERMISSION_DENIED, details
        assert witness.get_object(Bucket=bucket, Key="precious.txt")["Body"].read() == b"keep me"

    validate = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume.volume_id, volume_capabilities=[capability()]
    )
    assert call(driver, "ValidateVolumeCapabilities", validate)[0] == grpc.StatusCode.PERMISSION_DENIED

    run(
        rpc(
            driver.socket_path,
            "Controller",
            "DeleteVolume",
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id, secrets=admin),
        )
    )
    assert bucket not in {b["Name"] for b in witness.list_buckets()["Buckets"]}


def test_an_abort_that_is_denied_fails_delete_volume_and_deletes_nothing(
    iam_server: IamUsers, driver_factory: Any
) -> None:
    server, users = iam_server
    admin = users["admin"]
    witness = boto3_client("s3", server, Credentials(admin["access_key_id"], admin["secret_access_key"]))
    driver = driver_factory(env_for(server, users["no-abort"]), "--mode=controller")
    volume = run(rpc(driver.socket_path, "Controller", "CreateVolume", create_request("pvc-no-abort"))).volume
    bucket = bucket_name_for("pvc-no-abort")
    upload_id = witness.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    witness.put_object(Bucket=bucket, Key="precious.txt", Body=b"keep me")

    status, details = call(driver, "DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
    assert status == grpc.StatusCode.PERMISSION_DENIED, details
    assert "AbortMultipartUpload" in details
    assert [u["UploadId"] for u in witness.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload_id]
    assert witness.get_object(Bucket=bucket, Key="precious.txt")["Body"].read() == b"keep me"

    witness.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id)
    run(
        rpc(
            driver.socket_path,
            "Controller",
            "DeleteVolume",
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id),
        )
    )
    assert bucket not in {b["Name"] for b in witness.list_buckets()["Buckets"]}


def test_a_dead_endpoint_is_unavailable_for_every_call_and_probe_is_not_ready(driver_factory: Any) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{placeholder.getsockname()[1]}"  # bound, never listening: refused
        env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}
        driver = driver_factory(env, "--mode=controller", f"--s3-endpoint-url={dead}", wait=False)
        # Serving, but not ready: Probe answers (not an error) ready false, and the log says why.
        probe = run(wait_serving(driver.socket_path, driver.process))
        assert probe.HasField("ready") and probe.ready.value is False
        assert f"not ready: S3 endpoint {dead}/ is not reachable" in driver.log()
        requests = [
            ("CreateVolume", create_request("pvc-dead")),
            ("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=f"bucket:{bucket_name_for('pvc-dead')}")),
            (
                "ValidateVolumeCapabilities",
                csi_pb2.ValidateVolumeCapabilitiesRequest(
                    volume_id=f"bucket:{bucket_name_for('pvc-dead')}", volume_capabilities=[capability()]
                ),
            ),
        ]
        for method, request in requests:
            status, details = call(driver, method, request)
            assert status == grpc.StatusCode.UNAVAILABLE, (method, details)
            assert "ConnectionError" in details

"""``s3csi doctor`` as an operator runs it, against moto with IAM enforcement: one failure per named cause
(wrong endpoint, wrong keys, missing bucket, read-only keys on a read-write volume, a refused option), each
with its exact FAIL line and exit status 1, and good volumes that pass. Credentials reach doctor through
its environment or files, never its argv; no secret value appears in what it prints.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from s3csi.demo.s3server import free_port
from s3csi.s3 import Credentials
from s3csi.volume.context import DEFAULT_DRIVER_NAME
from tests.integration.iam_support import IamWorld, WebIdentityFront, bucket_policy, iam_world
from tests.kube_fake import FakeKubeApi

BUCKET = "doctor-data"
PREFIX = "team/"
READ = ["s3:ListBucket", "s3:GetObject"]
WRITE = [*READ, "s3:PutObject", "s3:DeleteObject"]
NAMESPACE, SERVICE_ACCOUNT = "team-a", "reports"

PASS_OPTIONS_RW = (
    f"PASS options: NodePublishVolume accepts the volume: s3://{BUCKET}/{PREFIX} read-write, "
    "mount-s3 arguments --allow-root"
)
# moto with IAM enforcement answers an unsigned request with HTTP 500 (AWS: 403); either shows it is there.
PASS_ENDPOINT = "PASS endpoint: {endpoint} answered an unsigned HeadBucket with HTTP 500"
PASS_BUCKET = f"PASS bucket: s3://{BUCKET} exists in us-east-1"
PASS_PREFIX = f"PASS prefix: ListObjectsV2 of s3://{BUCKET}/{PREFIX}: not empty"
DRIVER_KEYS_FIX = (
    "give the node plugin working keys (the chart's driver secret as AWS_ACCESS_KEY_ID/"
    "AWS_SECRET_ACCESS_KEY, a shared credentials file, web identity or instance metadata: "
    "docs/credentials.md); doctor reads them from its own environment as the node plugin does"
)
PROBE_NAME = re.compile(r"\.s3csi-doctor-[0-9a-f]{16}")
READ_ONLY_KEYS_FAIL = (
    f"FAIL write: PutObject s3://{BUCKET}/{PREFIX}.s3csi-doctor-<random>: AccessDenied (HTTP 403): "
    f"Access Denied — fix: these credentials cannot write: allow s3:PutObject on "
    f"arn:aws:s3:::{BUCKET}/{PREFIX}*, or mount the volume read-only (PV spec.csi.readOnly: true, "
    "accessModes ReadOnlyMany, or the mount option --read-only)"
)
PROBE = re.compile(
    rf"PASS write: wrote and deleted the probe object s3://{BUCKET}/{PREFIX}\.s3csi-doctor-[0-9a-f]{{16}}"
)


@dataclass
class World:
    iam: IamWorld
    writer: Credentials
    reader: Credentials
    sts: WebIdentityFront
    role_arn: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with iam_world() as iam:
        iam.bucket(BUCKET)
        iam.client("s3").put_object(Bucket=BUCKET, Key=f"{PREFIX}report.csv", Body=b"a,b\n")
        sts = WebIdentityFront(iam)
        try:
            role_arn = iam.role("doctor-writer", bucket_policy(BUCKET, WRITE))
            sts.allow(role_arn, NAMESPACE, SERVICE_ACCOUNT)
            yield World(
                iam,
                # On every doctor-* bucket: S3 tells keys that may list a bucket that it does not exist.
                writer=iam.user("doctor-writer", bucket_policy("doctor-*", WRITE)),
                reader=iam.user("doctor-reader", bucket_policy(BUCKET, READ)),
                sts=sts,
                role_arn=role_arn,
            )
        finally:
            sts.stop()


def environment(world: World, keys: Credentials | None, home: Path, **extra: str) -> dict[str, str]:
    """The node plugin's environment: its endpoint, and its keys in the standard AWS variables."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": world.iam.server.endpoint_url,
        "AWS_REGION": world.iam.server.region,
        **extra,
    }
    if keys is not None:
        env["AWS_ACCESS_KEY_ID"] = keys.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = keys.secret_access_key
    return env


def doctor(world: World, env: dict[str, str], *argv: str) -> tuple[int, list[str]]:
    """Run ``s3csi doctor``; its stdout lines. Nothing on stderr, and no secret anywhere in its output."""
    done = subprocess.run(
        [sys.executable, "-m", "s3csi", "doctor", *argv],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    for secret in world.iam.secret_values:
        assert secret not in done.stdout + done.stderr
    assert done.stderr == ""
    return done.returncode, done.stdout.splitlines()


def attributes(*extra: str) -> list[str]:
    pairs = [f"bucketName={BUCKET}", f"prefix={PREFIX}", *extra]
    return [arg for pair in pairs for arg in ("--volume-attribute", pair)]


def secret_object(keys: Credentials) -> dict[str, Any]:
    """The node-publish Secret as ``kubectl get secret -o yaml`` shows it (data base64-encoded)."""
    data = {"access_key_id": keys.access_key_id, "secret_access_key": keys.secret_access_key}
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    metadata = {"name": "reader-keys", "namespace": NAMESPACE}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "data": encoded}


def pv_object(name: str, *, access_mode: str, mount_options: list[str]) -> dict[str, Any]:
    spec = {
        "accessModes": [access_mode],
        "capacity": {"storage": "1Ti"},
        "mountOptions": mount_options,
        "csi": {
            "driver": DEFAULT_DRIVER_NAME,
            "volumeHandle": "doctor-volume",
            "volumeAttributes": {"bucketName": BUCKET, "prefix": PREFIX},
        },
    }
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def manifest_file(path: Path, obj: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def test_a_read_write_volume_passes_every_step(world: World, tmp_path: Path) -> None:
    env = environment(world, world.writer, tmp_path)
    status, lines = doctor(world, env, *attributes())
    endpoint = world.iam.server.endpoint_url
    assert lines[:-1] == [
        PASS_OPTIONS_RW,
        PASS_ENDPOINT.format(endpoint=endpoint),
        "PASS credentials: S3 accepts requests signed with the keys from environment",
        PASS_BUCKET,
        PASS_PREFIX,
    ]
    assert PROBE.fullmatch(lines[-1]), lines[-1]
    assert status == 0
    # The probe object is gone again: the prefix holds what it held.
    listed = world.iam.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    assert [item["Key"] for item in listed["Contents"]] == [f"{PREFIX}report.csv"]


def test_a_read_only_pv_passes_with_read_only_keys(world: World, tmp_path: Path) -> None:
    env = environment(world, world.reader, tmp_path)
    pv = manifest_file(
        tmp_path / "pv.yaml",
        pv_object("pv-doctor", access_mode="ReadOnlyMany", mount_options=["allow-other"]),
    )
    status, lines = doctor(world, env, "--pv", pv)
    assert lines == [
        f"PASS options: NodePublishVolume accepts the volume: s3://{BUCKET}/{PREFIX} read-only, "
        "mount-s3 arguments --allow-other --read-only --uid=0",
        PASS_ENDPOINT.format(endpoint=world.iam.server.endpoint_url),
        "PASS credentials: S3 accepts requests signed with the keys from environment",
        PASS_BUCKET,
        PASS_PREFIX,
        "SKIP write: the mount is read-only (--read-only): nothing is written",
    ]
    assert status == 0


def test_a_pod_role_passes_through_sts(world: World, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(world.sts.mint(NAMESPACE, SERVICE_ACCOUNT))
    env = environment(world, None, tmp_path, AWS_ENDPOINT_URL_STS=world.sts.url)
    argv = attributes("authenticationSource=pod", f"roleArn={world.role_arn}")
    status, lines = doctor(world, env, *argv, "--service-account-token-file", str(token))
    assert lines[2] == "PASS credentials: S3 accepts requests signed with the keys from pod service account"
    assert PROBE.fullmatch(lines[-1]), lines
    assert status == 0


def test_wrong_endpoint(world: World, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = environment(world, world.writer, tmp_path, AWS_ENDPOINT_URL=closed)
    status, lines = doctor(world, env, *attributes(), "--timeout", "5")
    port = closed.rsplit(":", 1)[1]
    assert lines[1:] == [
        f"FAIL endpoint: no HTTP answer from {closed} within 5 s: HeadBucket s3://{BUCKET}: ConnectionError: "
        f"Cannot connect to host 127.0.0.1:{port} ssl:default [Connect call failed ('127.0.0.1', {port})] "
        "— fix: check the endpoint URL and port the node plugin uses (--s3-endpoint-url or AWS_ENDPOINT_URL; "
        "the chart's s3.endpointUrl), its DNS name, and that the S3 service is running"
    ]
    assert status == 1


@pytest.mark.parametrize(
    ("keys", "line"),
    [
        pytest.param(
            lambda world: Credentials("AKIADOCTORUNKNOWN000", world.writer.secret_access_key),
            f"FAIL credentials: S3 refused the keys from environment: ListObjectsV2 s3://{BUCKET}: "
            "InvalidAccessKeyId (HTTP 403): The AWS Access Key Id you provided does not exist in our "
            f"records. — fix: this endpoint does not know the access key id: {DRIVER_KEYS_FIX}",
            id="unknown-key-id",
        ),
        pytest.param(
            lambda world: Credentials(world.writer.access_key_id, "not-the-secret-of-that-key"),
            f"FAIL credentials: S3 refused the keys from environment: ListObjectsV2 s3://{BUCKET}: "
            "SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method. — fix: the secret access key does "
            "not belong to the access key id (or the region differs from the one S3 signs for): "
            + DRIVER_KEYS_FIX,
            id="wrong-secret",
        ),
    ],
)
def test_wrong_keys(world: World, tmp_path: Path, keys: Callable[[World], Credentials], line: str) -> None:
    status, lines = doctor(world, environment(world, keys(world), tmp_path), *attributes())
    assert lines[2:] == [line]
    assert status == 1


def test_missing_bucket(world: World, tmp_path: Path) -> None:
    env = environment(world, world.writer, tmp_path)
    status, lines = doctor(world, env, "--volume-attribute", "bucketName=doctor-missing")
    assert lines[2:] == [
        "PASS credentials: S3 accepts requests signed with the keys from environment",
        "FAIL bucket: ListObjectsV2 s3://doctor-missing: NoSuchBucket (HTTP 404): The specified bucket does "
        "not exist — fix: create the bucket doctor-missing, or correct volumeAttributes.bucketName",
    ]
    assert status == 1


def test_read_only_keys_on_a_read_write_volume(world: World, tmp_path: Path) -> None:
    secret = manifest_file(tmp_path / "secret.yaml", secret_object(world.reader))
    env = environment(world, None, tmp_path)
    status, lines = doctor(world, env, *attributes("authenticationSource=secret"), "--secret-file", secret)
    assert lines[2] == "PASS credentials: S3 accepts requests signed with the keys from node-publish secret"
    assert len(lines) == 6
    assert PROBE_NAME.sub(".s3csi-doctor-<random>", lines[5]) == READ_ONLY_KEYS_FAIL
    assert status == 1


def test_refused_option(world: World, tmp_path: Path) -> None:
    env = environment(world, world.writer, tmp_path)
    pv = manifest_file(
        tmp_path / "pv.yaml",
        pv_object("pv-doctor", access_mode="ReadWriteMany", mount_options=["endpoint-url=http://elsewhere"]),
    )
    status, lines = doctor(world, env, "--pv", pv)
    assert lines == [
        "FAIL options: mount option --endpoint-url is not allowed: the S3 endpoint is driver configuration "
        "(--s3-endpoint-url); a volume cannot choose where the driver sends its credentials — fix: remove or "
        "correct that entry of the PV's mountOptions (the allowed ones: docs/mount-options.md)"
    ]
    assert status == 1


def test_settings_the_endpoint_rules_refuse(world: World, tmp_path: Path) -> None:
    """Transfer Acceleration with the node plugin's custom endpoint: S3's endpoint rules refuse it before any
    request, and doctor says so on the endpoint step rather than ending with an error."""
    env = environment(world, world.writer, tmp_path)
    status, lines = doctor(world, env, *attributes(), "--mount-option", "transfer-acceleration")
    assert lines[1:] == [
        f"FAIL endpoint: S3's endpoint rules refuse the volume's settings: cannot address bucket '{BUCKET}': "
        "A custom endpoint cannot be combined with S3 Accelerate — fix: drop the setting the message names: "
        "a mount option in the PV's mountOptions (--transfer-acceleration, --dual-stack, --force-path-style) "
        "or the node plugin's (AWS_USE_FIPS_ENDPOINT, --s3-endpoint-url or AWS_ENDPOINT_URL), or use a "
        "bucket name, access point or alias those settings can address (volumeAttributes.bucketName; "
        "docs/mount-options.md)"
    ]
    assert status == 1


def kubelet_volume(kubelet: Path, pod_uid: str, name: str, **data: str) -> None:
    """The directory and vol_data.json kubelet keeps for one CSI volume of a pod."""
    directory = kubelet / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / name
    (directory / "mount").mkdir(parents=True)
    (directory / "vol_data.json").write_text(
        json.dumps({"nodeName": "node-1", "attachmentID": "csi-x", **data})
    )


def test_a_pod_on_a_node(world: World, tmp_path: Path, kube_api: FakeKubeApi) -> None:
    """``--pod-uid``: each of the pod's volumes of this driver, its PV (and secret) read from the API."""
    kubelet, pod_uid = tmp_path / "kubelet", "6d1f3e8a-54c2-4a8e-9f0e-2b1c7d9e0a11"
    guarded = pv_object("pv-b", access_mode="ReadWriteMany", mount_options=[])
    guarded["spec"]["csi"]["volumeAttributes"]["authenticationSource"] = "secret"
    guarded["spec"]["csi"]["nodePublishSecretRef"] = {"namespace": NAMESPACE, "name": "reader-keys"}
    kube_api.add(pv_object("pv-a", access_mode="ReadWriteMany", mount_options=[]))
    kube_api.add(guarded)
    kube_api.add(secret_object(world.reader))
    persistent = {"driverName": DEFAULT_DRIVER_NAME, "volumeLifecycleMode": "Persistent"}
    kubelet_volume(kubelet, pod_uid, "pv-a", specVolumeID="pv-a", volumeHandle="doctor-volume", **persistent)
    kubelet_volume(kubelet, pod_uid, "pv-b", specVolumeID="pv-b", volumeHandle="doctor-volume", **persistent)
    kubelet_volume(
        kubelet,
        pod_uid,
        "scratch",
        specVolumeID="scratch",
        volumeHandle="csi-123",
        driverName=DEFAULT_DRIVER_NAME,
        volumeLifecycleMode="Ephemeral",
    )
    kubelet_volume(kubelet, pod_uid, "pv-ebs", specVolumeID="pv-ebs", driverName="ebs.csi.aws.com")

    env = environment(world, world.writer, tmp_path)
    status, lines = doctor(
        world, env, "--pod-uid", pod_uid, "--kubelet-dir", str(kubelet), *kube_api.driver_args()
    )
    assert [PROBE_NAME.sub(".s3csi-doctor-<random>", line) for line in lines] == [
        "volume pv-a: PersistentVolume pv-a",
        PASS_OPTIONS_RW,
        PASS_ENDPOINT.format(endpoint=world.iam.server.endpoint_url),
        "PASS credentials: S3 accepts requests signed with the keys from environment",
        PASS_BUCKET,
        PASS_PREFIX,
        f"PASS write: wrote and deleted the probe object s3://{BUCKET}/{PREFIX}.s3csi-doctor-<random>",
        "volume pv-b: PersistentVolume pv-b",
        PASS_OPTIONS_RW,
        PASS_ENDPOINT.format(endpoint=world.iam.server.endpoint_url),
        "PASS credentials: S3 accepts requests signed with the keys from node-publish secret",
        PASS_BUCKET,
        PASS_PREFIX,
        READ_ONLY_KEYS_FAIL,
        "SKIP volume scratch: an inline volume, whose attributes are in the pod's spec: check it with "
        "--volume-attribute",
    ]
    assert status == 1

"""Credential sources against real enforcement: moto's IAM-enforcing S3 server, STS through the web-identity
front, a local IMDSv2 (tests/integration/iam_support.py says what each part checks).

Every credential is proven by using it: an S3 read or write that the server allows or refuses according to
the IAM policy of the user or role behind the keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import json
import logging
import os
import stat
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kubernetes_validate
import pytest
import yaml

from s3csi.credentials import resolver as resolver_module
from s3csi.credentials.driver import driver_credential_provider
from s3csi.credentials.files import (
    credentials_file_name,
    remove_shared_credentials,
    write_shared_credentials,
)
from s3csi.credentials.plan import CredentialInputs
from s3csi.credentials.resolver import CredentialResolver
from s3csi.csi.settings import DEFAULT_DRIVER_NAME
from s3csi.errors import InvalidArgument, PermissionDenied, S3csiError
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.credentials import CredentialProvider, default_credential_provider
from s3csi.s3.errors import AccessDenied
from s3csi.s3.imds import instance_region
from s3csi.s3.sts import WebIdentityCredentials
from s3csi.volume.context import AuthenticationSource
from tests.conftest import run_as
from tests.integration.iam_support import (
    AUDIENCE,
    IamWorld,
    LocalImds,
    WebIdentityFront,
    bucket_policy,
    every_argv,
    iam_world,
)

T = TypeVar("T")
READ = ["s3:GetObject", "s3:ListBucket"]
OBJECT = "hello.txt"
CONTENT = b"hello from an IAM-enforcing S3\n"
MOUNTER_GID = 1000


class Captured(logging.Handler):
    """Every log record of the module's tests, for the redaction test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


ERRORS: list[str] = []
"""str() of every error the tests provoked, for the redaction test."""


@dataclass
class World:
    iam: IamWorld
    front: WebIdentityFront
    imds: LocalImds
    bucket: str
    env_user: Credentials
    file_user: Credentials
    driver_role: str
    reader_role: str
    writer_role: str
    captured: Captured

    def settings(self) -> S3Settings:
        return S3Settings(
            endpoint_url=self.iam.server.endpoint_url,
            region=self.iam.server.region,
            force_path_style=True,
            max_attempts=1,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    captured = Captured()
    root = logging.getLogger("s3csi")
    previous = root.level
    root.addHandler(captured)
    root.setLevel(logging.DEBUG)
    with iam_world() as iam:
        front = WebIdentityFront(iam)
        bucket = iam.bucket(f"creds-{uuid.uuid4().hex[:12]}")
        iam.client("s3").put_object(Bucket=bucket, Key=OBJECT, Body=CONTENT)
        # The admin stands in for EC2, which assumes the instance profile's role for IMDS.
        instance_role = iam.role(
            "node-instance", bucket_policy(bucket, READ), principal={"AWS": iam.admin_arn}
        )
        imds = LocalImds("node-instance", iam.assume_role(instance_role, "i-0123456789"))
        try:
            yield World(
                iam=iam,
                front=front,
                imds=imds,
                bucket=bucket,
                env_user=iam.user("env-user", bucket_policy(bucket, READ)),
                file_user=iam.user("file-user", bucket_policy(bucket, READ)),
                driver_role=iam.role("driver-irsa", bucket_policy(bucket, READ)),
                reader_role=iam.role("team-a-reader", bucket_policy(bucket, READ)),
                writer_role=iam.role("team-b-writer", bucket_policy(bucket, ["s3:*"])),
                captured=captured,
            )
        finally:
            front.stop()
            imds.stop()
            root.removeHandler(captured)
            root.setLevel(previous)


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


def expect(error: type[S3csiError], call: Callable[[], object]) -> S3csiError:
    with pytest.raises(error) as raised:
        call()
    ERRORS.append(str(raised.value))
    return raised.value


def read_with(world: World, credentials: CredentialProvider) -> bytes:
    async def read() -> bytes:
        async with S3Client(world.settings(), credentials) as client:
            return await client.get_object(world.bucket, OBJECT)

    return run(read())


def write_with(world: World, credentials: CredentialProvider, key: str) -> None:
    async def write() -> None:
        async with S3Client(world.settings(), credentials) as client:
            await client.put_object(world.bucket, key, b"written")

    run(write())


def _write_ini(path: Path, credentials: Credentials) -> None:
    path.write_text(
        f"[default]\naws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )


def driver_env(world: World, tmp_path: Path) -> dict[str, str]:
    """The driver's environment with every source configured."""
    credentials_file = tmp_path / "credentials"
    _write_ini(credentials_file, world.file_user)
    token_file = tmp_path / "token"
    world.front.allow(world.driver_role, "kube-system", "s3csi-node")
    token_file.write_text(world.front.mint("kube-system", "s3csi-node"))
    return {
        "HOME": str(tmp_path),
        "AWS_REGION": world.iam.server.region,
        "AWS_ACCESS_KEY_ID": world.env_user.access_key_id,
        "AWS_SECRET_ACCESS_KEY": world.env_user.secret_access_key,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_ARN": world.driver_role,
        "AWS_ENDPOINT_URL_STS": world.front.url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": world.imds.url,
    }


def exercise_driver_chain(world: World, tmp_path: Path) -> list[tuple[str, str]]:
    """Remove the sources one by one, best first; each level must resolve to the next source and read."""
    env = driver_env(world, tmp_path)
    levels = [
        ("environment", (), world.env_user.access_key_id),
        (
            "shared-credentials-file",
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            world.file_user.access_key_id,
        ),
        ("web-identity", ("AWS_SHARED_CREDENTIALS_FILE",), None),
        (
            "instance-metadata",
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),
            world.imds.credentials.access_key_id,
        ),
    ]
    seen = []
    for source, removed, key_id in levels:
        for name in removed:
            env.pop(name)
        if source == "web-identity":
            Path(env["HOME"], "credentials").unlink()  # so the default ~/.aws path cannot stand in
        chain = driver_credential_provider(env)
        credentials = run(chain.get())
        assert credentials.source == source
        if key_id is not None:
            assert credentials.access_key_id == key_id
        assert read_with(world, chain) == CONTENT
        seen.append((source, credentials.access_key_id))
    return seen


def test_driver_sources_resolve_in_order_and_their_keys_work(world: World, tmp_path: Path) -> None:
    before = len(world.front.exchanges)
    seen = exercise_driver_chain(world, tmp_path)
    assert [source for source, _ in seen] == [
        "environment",
        "shared-credentials-file",
        "web-identity",
        "instance-metadata",
    ]
    # Web identity and IMDS gave session keys of their roles, not keys of a user.
    assert seen[2][1].startswith("ASIA")
    assert len(world.front.exchanges) == before + 1
    assert any(request.startswith("PUT /latest/api/token") for request in world.imds.requests)
    logged = "\n".join(world.captured.lines)
    for source, _ in seen:
        assert f"AWS credentials from {source}" in logged


def test_no_source_is_a_clear_error_and_imds_can_be_disabled(world: World, tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": world.imds.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    requests = len(world.imds.requests)
    error = expect(PermissionDenied, lambda: run(driver_credential_provider(env).get()))
    assert "environment, shared-credentials-file" in str(error)
    assert "instance-metadata" not in str(error)
    assert len(world.imds.requests) == requests
    # Nothing listening where IMDS should be: "no credentials here", quickly, not a hang or a crash.
    closed = {"HOME": str(tmp_path), "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}
    error = expect(PermissionDenied, lambda: run(driver_credential_provider(closed).get()))
    assert "instance-metadata" in str(error)
    expect(InvalidArgument, lambda: driver_credential_provider({"AWS_ROLE_ARN": world.driver_role}))


def test_web_identity_is_cached_and_rereads_a_rotated_token_file(world: World, tmp_path: Path) -> None:
    world.front.allow(world.driver_role, "kube-system", "s3csi-node")
    token_file = tmp_path / "token"
    first = world.front.mint("kube-system", "s3csi-node")
    token_file.write_text(first + "\n")
    now = [0.0]
    source = WebIdentityCredentials(
        token_file=str(token_file),
        role_arn=world.driver_role,
        session_name="s3csi-driver",
        endpoint=world.front.url,
        clock=lambda: now[0],
    )
    initial = run(source.get())
    assert initial is not None
    now[0] = 1.0
    assert run(source.get()) is initial  # cached: no second exchange
    assert world.front.exchanges[-1] == first
    second = world.front.mint("kube-system", "s3csi-node")
    token_file.write_text(second)  # kubelet rotated the projected token
    assert initial.expiry is not None
    now[0] = initial.expiry - 60  # inside the refresh margin
    renewed = run(source.get())
    assert renewed is not None
    assert world.front.exchanges[-1] == second
    assert renewed.access_key_id != initial.access_key_id
    assert read_with(world, StaticCredentials(renewed)) == CONTENT
    # A token the role does not trust.
    token_file.write_text(world.front.mint("default", "intruder"))
    now[0] = renewed.expiry or 0
    error = expect(PermissionDenied, lambda: run(source.get()))
    assert "AccessDenied" in str(error)
    assert world.driver_role in str(error)
    # A token past its expiry (kubelet stopped refreshing the projected volume).
    token_file.write_text(world.front.mint("kube-system", "s3csi-node", ttl_s=-60))
    error = expect(PermissionDenied, lambda: run(source.get()))
    assert "ExpiredTokenException" in str(error)


def resolver(world: World, env: dict[str, str] | None = None) -> CredentialResolver:
    driver = driver_credential_provider(env or {"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"})
    return CredentialResolver(driver, sts_endpoint_url=world.front.url)


def test_secret_source_uses_the_secret_and_never_falls_back(world: World, tmp_path: Path) -> None:
    user = world.iam.user(f"secret-{uuid.uuid4().hex[:6]}", bucket_policy(world.bucket, READ))
    secrets = {"access_key_id": user.access_key_id, "secret_access_key": user.secret_access_key}
    # The driver has working keys of its own: they must not be used for a secret volume.
    driver = driver_env(world, tmp_path)
    inputs = CredentialInputs(authentication_source=AuthenticationSource.SECRET, secrets=secrets)
    credentials = run(resolver(world, driver).resolve(inputs))
    assert (credentials.access_key_id, credentials.source) == (user.access_key_id, "node-publish secret")
    assert read_with(world, StaticCredentials(credentials)) == CONTENT
    empty = CredentialInputs(authentication_source=AuthenticationSource.SECRET)
    expect(InvalidArgument, lambda: run(resolver(world, driver).resolve(empty)))
    # A known key id with a wrong secret: the server checks the signature and refuses, EACCES for a reader.
    forged = {**secrets, "secret_access_key": "not-the-secret-" + uuid.uuid4().hex}
    world.iam.secret_values.add(forged["secret_access_key"])
    wrong = run(resolver(world).resolve(CredentialInputs(AuthenticationSource.SECRET, secrets=forged)))
    error = expect(AccessDenied, lambda: read_with(world, StaticCredentials(wrong)))
    assert isinstance(error, AccessDenied)
    assert error.errno == errno.EACCES


def pod_inputs(
    world: World, namespace: str, service_account: str, role: str | None, **extra: Any
) -> CredentialInputs:
    token = world.front.mint(namespace, service_account, audience=extra.pop("audience", AUDIENCE))
    return CredentialInputs(
        authentication_source=AuthenticationSource.POD,
        service_account_tokens=world.front.tokens_json(token),
        service_account_role_arn=role,
        pod_namespace=namespace,
        service_account_name=service_account,
        driver_region=world.iam.server.region,
        **extra,
    )


def test_pods_in_different_service_accounts_get_their_roles_permissions(world: World) -> None:
    world.front.allow(world.reader_role, "team-a", "reader")
    world.front.allow(world.writer_role, "team-b", "writer")
    pods = resolver(world)
    reader = run(pods.resolve(pod_inputs(world, "team-a", "reader", world.reader_role)))
    writer = run(pods.resolve(pod_inputs(world, "team-b", "writer", world.writer_role)))
    assert reader.source == writer.source == "pod service account"
    assert reader.access_key_id != writer.access_key_id
    # The same bucket, two effective permissions.
    assert read_with(world, StaticCredentials(reader)) == CONTENT
    assert read_with(world, StaticCredentials(writer)) == CONTENT
    write_with(world, StaticCredentials(writer), "from-team-b")
    error = expect(AccessDenied, lambda: write_with(world, StaticCredentials(reader), "from-team-a"))
    assert isinstance(error, AccessDenied)
    assert error.errno == errno.EACCES
    # team-a's token cannot buy team-b's role, however the volume names it.
    stolen = pod_inputs(world, "team-a", "reader", None, role_arn=world.writer_role)
    error = expect(PermissionDenied, lambda: run(pods.resolve(stolen)))
    assert "AccessDenied" in str(error)
    # A token kubelet says has expired is refused before STS is asked.
    exchanges = len(world.front.exchanges)
    expired = world.front.mint("team-a", "reader", ttl_s=-60)
    inputs = pod_inputs(world, "team-a", "reader", world.reader_role)
    stale = CredentialInputs(**{**vars(inputs), "service_account_tokens": world.front.tokens_json(expired)})
    error = expect(PermissionDenied, lambda: run(pods.resolve(stale)))
    assert "expired" in str(error)
    assert len(world.front.exchanges) == exchanges
    # A token for another audience is refused by STS.
    other = pod_inputs(world, "team-a", "reader", world.reader_role, audience="vault")
    error = expect(PermissionDenied, lambda: run(pods.resolve(other)))
    assert "InvalidIdentityToken" in str(error)


def test_a_pod_sts_region_nobody_sets_comes_from_instance_metadata(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.front.allow(world.reader_role, "team-c", "reader")
    inputs = dataclasses.replace(
        pod_inputs(world, "team-c", "reader", world.reader_role), driver_region=None
    )  # neither stsRegion, nor --region, nor a configured driver region
    regions: list[str] = []
    real_sts_endpoint = resolver_module.sts_endpoint

    def sts_endpoint(override: str | None, region: str) -> str:
        regions.append(region)
        return real_sts_endpoint(override, region)

    monkeypatch.setattr(resolver_module, "sts_endpoint", sts_endpoint)
    pods = CredentialResolver(
        driver_credential_provider({"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"}),
        sts_endpoint_url=world.front.url,
        instance_region=functools.partial(instance_region, world.imds.url),
    )
    world.imds.region = None  # an instance metadata service that does not say
    error = expect(InvalidArgument, lambda: run(pods.resolve(inputs)))
    assert "volume attribute stsRegion" in str(error) and "--region mount option" in str(error)
    world.imds.region = "eu-central-1"
    keys = run(pods.resolve(inputs))
    assert read_with(world, StaticCredentials(keys)) == CONTENT
    assert regions == ["eu-central-1"]
    assert "GET /latest/meta-data/placement/region" in world.imds.requests
    said = [line for line in world.captured.lines if "from the instance metadata service" in line]
    assert len(said) == 1 and "STS region eu-central-1" in said[0]
    # Asked once: the next exchange uses the region found.
    asked = world.imds.requests.count("GET /latest/meta-data/placement/region")
    run(
        pods.resolve(
            dataclasses.replace(
                inputs,
                service_account_tokens=pod_inputs(
                    world, "team-c", "reader", world.reader_role
                ).service_account_tokens,
            )
        )
    )
    assert world.imds.requests.count("GET /latest/meta-data/placement/region") == asked
    # Without a service (instance metadata disabled), the same clear error.
    alone = CredentialResolver(pods.driver, sts_endpoint_url=world.front.url)
    error = expect(InvalidArgument, lambda: run(alone.resolve(inputs)))
    assert "stsRegion" in str(error)


OTHER_ACCOUNT = "111122223333"


def read_bucket(world: World, credentials: Credentials, bucket: str, key: str) -> bytes:
    async def read() -> bytes:
        async with S3Client(world.settings(), StaticCredentials(credentials)) as client:
            await client.list_objects_v2(bucket, max_keys=1)
            return await client.get_object(bucket, key)

    return run(read())


def test_a_bucket_in_another_account_through_its_bucket_policy(world: World) -> None:
    """docs/credentials.md, "Cross-account access": account B's bucket policy names account A's user, whose
    own policy allows the bucket too. moto evaluates the bucket policy (its Deny refuses) and requires the
    identity policy, as AWS does; it does not refuse a caller the bucket policy does not name (AWS would)."""
    owner = world.iam.other_account(OTHER_ACCOUNT)
    bucket = f"xacct-{uuid.uuid4().hex[:10]}"
    owner_s3 = world.iam.client("s3", owner)
    owner_s3.create_bucket(Bucket=bucket)
    owner_s3.put_object(Bucket=bucket, Key=OBJECT, Body=CONTENT)
    reader = world.iam.user(f"xacct-{uuid.uuid4().hex[:6]}", bucket_policy(bucket, READ))
    caller = world.iam.client("sts", reader).get_caller_identity()
    assert caller["Account"] != OTHER_ACCOUNT  # two accounts indeed

    def policy(effect: str) -> str:
        resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
        statement = {
            "Effect": effect,
            "Principal": {"AWS": caller["Arn"]},
            "Action": READ,
            "Resource": resources,
        }
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    owner_s3.put_bucket_policy(Bucket=bucket, Policy=policy("Allow"))
    assert read_bucket(world, reader, bucket, OBJECT) == CONTENT
    # The bucket policy is what the owner controls: its Deny wins over the reader's own Allow.
    owner_s3.put_bucket_policy(Bucket=bucket, Policy=policy("Deny"))
    expect(AccessDenied, lambda: read_bucket(world, reader, bucket, OBJECT))
    # And the bucket policy alone grants nothing: account A must allow its user the bucket too.
    owner_s3.put_bucket_policy(Bucket=bucket, Policy=policy("Allow"))
    stranger = world.iam.user(f"xacct-none-{uuid.uuid4().hex[:6]}", bucket_policy(world.bucket, READ))
    expect(AccessDenied, lambda: read_bucket(world, stranger, bucket, OBJECT))


def test_a_pod_role_in_another_account_trusting_this_clusters_issuer(world: World) -> None:
    """The volume names a role of account B that trusts the cluster's identity provider: the pod's token
    buys keys that act in account B, on B's bucket, under the role's policy."""
    owner = world.iam.other_account(OTHER_ACCOUNT)
    bucket = f"xacct-pod-{uuid.uuid4().hex[:10]}"
    owner_s3 = world.iam.client("s3", owner)
    owner_s3.create_bucket(Bucket=bucket)
    owner_s3.put_object(Bucket=bucket, Key=OBJECT, Body=CONTENT)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "kubernetes"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    owner_iam = world.iam.client("iam", owner)
    name = f"pod-reader-{uuid.uuid4().hex[:6]}"
    role = owner_iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    owner_iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=bucket_policy(bucket, READ))
    assert f":{OTHER_ACCOUNT}:role/" in role
    world.front.allow(role, "team-x", "reader")
    keys = run(resolver(world).resolve(pod_inputs(world, "team-x", "reader", None, role_arn=role)))
    assert world.iam.client("sts", keys).get_caller_identity()["Account"] == OTHER_ACCOUNT
    assert read_bucket(world, keys, bucket, OBJECT) == CONTENT
    # Another service account of the same cluster is not trusted by that role.
    error = expect(
        PermissionDenied,
        lambda: run(resolver(world).resolve(pod_inputs(world, "team-y", "reader", None, role_arn=role))),
    )
    assert "AccessDenied" in str(error)


def test_pod_keys_are_reused_for_a_token_and_renewed_for_a_new_one(world: World) -> None:
    world.front.allow(world.reader_role, "team-a", "reader")
    pods = resolver(world)
    inputs = pod_inputs(world, "team-a", "reader", world.reader_role)
    exchanges = len(world.front.exchanges)
    first = run(pods.resolve(inputs))
    again = run(pods.resolve(inputs))  # a republish with the same token
    assert again is first
    assert len(world.front.exchanges) == exchanges + 1
    renewed = run(
        pods.resolve(pod_inputs(world, "team-a", "reader", world.reader_role))
    )  # kubelet's new token
    assert renewed.access_key_id != first.access_key_id
    assert len(world.front.exchanges) == exchanges + 2


def test_rotation_through_the_credentials_file_needs_no_new_client(world: World, tmp_path: Path) -> None:
    """What a Mountpoint Pod sees: the node plugin rewrites its file on republish; reads go on across an
    IAM key rotation, and the old key is really revoked."""
    name = f"rotating-{uuid.uuid4().hex[:6]}"
    old = world.iam.user(name, bucket_policy(world.bucket, READ))
    directory = tmp_path / "comm" / "credentials"
    directory.parent.mkdir()  # the comm dir: the runtime makes it, the credentials dir is made inside
    file_name = credentials_file_name("vol-1", "sharing-key-1")
    path = write_shared_credentials(str(directory), old, gid=MOUNTER_GID, name=file_name)
    # The chain a mounter builds (podmounter/mounter.py points these variables at its comm dir).
    mounter_view = default_credential_provider(
        {
            "HOME": str(tmp_path),
            "AWS_SHARED_CREDENTIALS_FILE": path,
            "AWS_CONFIG_FILE": str(directory / "config"),
        }
    )

    async def reads_across_rotation() -> list[bytes]:
        async with S3Client(world.settings(), mounter_view) as client:
            results = [await client.get_object(world.bucket, OBJECT)]
            new = world.iam.access_key(name)
            write_shared_credentials(str(directory), new, gid=MOUNTER_GID, name=file_name)  # the republish
            world.iam.delete_access_key(name, old.access_key_id)  # the operator revokes the old key
            results.append(await client.get_object(world.bucket, OBJECT))
            return results

    assert run(reads_across_rotation()) == [CONTENT, CONTENT]
    error = expect(AccessDenied, lambda: read_with(world, StaticCredentials(old)))
    assert isinstance(error, AccessDenied)
    assert error.code == "InvalidAccessKeyId"
    remove_shared_credentials(str(directory))
    assert os.listdir(directory) == []


def test_credential_files_are_private_to_the_mounter_and_per_volume() -> None:
    # Not tmp_path: pytest's base directory is root-only, and other users must reach this one.
    with tempfile.TemporaryDirectory(prefix="s3csi-credfiles-") as base:
        os.chmod(base, 0o755)
        check_credential_file(Path(base) / "credentials")


def check_credential_file(directory: Path) -> None:
    keys = Credentials("AKIAFILETEST0000", "file-test-secret", "file-test-session")
    names = {
        credentials_file_name(volume, identity)
        for volume in ("vol-a", "vol-b")
        for identity in ("key-ns1-sa1", "key-ns1-sa2")
    }
    assert len(names) == 4
    name = credentials_file_name("vol-a", "key-ns1-sa1")
    assert "vol-a" not in name
    path = write_shared_credentials(str(directory), keys, gid=MOUNTER_GID, name=name)
    info = os.stat(path)
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, MOUNTER_GID)
    assert [entry for entry in os.listdir(directory) if entry.startswith(".")] == []  # no temporary left
    mounter = run_as(1000, 1000, ["cat", path], groups=[1000])
    assert mounter.returncode == 0
    assert b"file-test-secret" in mounter.stdout
    stranger = run_as(1001, 1001, ["cat", path])
    assert stranger.returncode != 0
    assert b"file-test-secret" not in stranger.stdout


def test_no_secret_value_leaks_into_logs_argv_mounts_or_errors(world: World, tmp_path: Path) -> None:
    """After the module's runs (and a driver-chain run of its own): search every place a value could leak."""
    exercise_driver_chain(world, tmp_path)
    values = {value for value in world.iam.secret_values if len(value) >= 8}
    assert len(values) > 10
    logs = "\n".join(world.captured.lines)
    assert "AWS credentials from" in logs
    errors = "\n".join(ERRORS)
    assert ERRORS
    mounts = Path("/proc/self/mountinfo").read_text()
    for value in values:
        for place, text in (
            ("logs", logs),
            ("errors", errors),
            ("argv", every_argv()),
            ("mounts", mounts),
        ):
            assert value not in text, f"a secret value appears in the {place}"


def test_the_shipped_csidriver_is_a_valid_object_with_what_the_sources_need() -> None:
    manifest = Path(__file__).resolve().parents[2] / "deploy" / "csidriver.yaml"
    csidriver = yaml.safe_load(manifest.read_text())
    kubernetes_validate.validate(csidriver, kubernetes_validate.latest_version(), strict=True)
    spec = csidriver["spec"]
    assert csidriver["metadata"]["name"] == DEFAULT_DRIVER_NAME
    assert spec["podInfoOnMount"] and spec["requiresRepublish"] and not spec["attachRequired"]
    # kubelet delegates fsGroup (volume_mount_group) only to drivers with fsGroupPolicy File.
    assert spec["fsGroupPolicy"] == "File"
    assert {"audience": AUDIENCE, "expirationSeconds": 3600} in spec["tokenRequests"]

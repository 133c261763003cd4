"""S3Client against real servers on 127.0.0.1: moto (the embedded S3 server, with and without IAM
enforcement) and a small recording HTTP server for what goes on the wire (headers, retries)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from s3csi.demo.s3server import EmbeddedS3Server, free_port
from s3csi.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials, WriteOptions
from s3csi.s3.client import copy_part_ranges
from s3csi.s3.credentials import default_credential_provider
from s3csi.s3.errors import AccessDenied, BucketNotEmpty, NoSuchBucket, NoSuchKey, S3Error, S3Unavailable
from tests.boto_support import boto3_client

T = TypeVar("T")
MIB = 1024 * 1024
# Small backoff so that retry tests take milliseconds.
FAST_RETRIES: dict[str, Any] = {"max_attempts": 3, "retry_base_delay_s": 0.001, "retry_max_delay_s": 0.01}


def run(coroutine_function: Callable[[S3Client], Awaitable[T]], client_factory: Callable[[], S3Client]) -> T:
    async def main() -> T:
        async with client_factory() as client:
            return await coroutine_function(client)

    return asyncio.run(main())


@pytest.fixture
def make_client(s3_server: EmbeddedS3Server) -> Callable[[], S3Client]:
    credentials = StaticCredentials(Credentials(s3_server.access_key_id, s3_server.secret_access_key))
    settings = S3Settings(endpoint_url=s3_server.endpoint_url, region=s3_server.region, force_path_style=True)
    return lambda: S3Client(settings, credentials)


KEYS = ["plain", "a b", "x+y", "100%", "t~", "d//e", "ü/ñ/日本", "./dot", "a/../b", "q?x=1&y#z"]


def test_put_get_head_delete_round_trip_with_awkward_keys(
    make_client: Callable[[], S3Client], s3: Any, bucket: str
) -> None:
    async def scenario(client: S3Client) -> None:
        for key in KEYS:
            etag = await client.put_object(bucket, key, key.encode() * 3)
            info = await client.head_object(bucket, key)
            assert (info.key, info.size, info.etag) == (key, len(key.encode()) * 3, etag)
            assert info.last_modified > 0
            assert await client.get_object(bucket, key) == key.encode() * 3
        listed = await client.list_objects_v2(bucket, delimiter="")
        assert sorted(o.key for o in listed.objects) == sorted(KEYS)
        for key in KEYS:
            await client.delete_object(bucket, key)
        await client.delete_object(bucket, "never-existed")

    run(scenario, make_client)
    # The independent witness saw the same keys come and go.
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_put_object_stores_the_exact_bytes_from_a_memoryview(
    make_client: Callable[[], S3Client], s3: Any, bucket: str
) -> None:
    data = os.urandom(100_000)
    run(lambda c: c.put_object(bucket, "mv", memoryview(data)[10:]), make_client)
    assert s3.get_object(Bucket=bucket, Key="mv")["Body"].read() == data[10:]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, 1000)),
        (0, 1, slice(0, 1)),
        (999, None, slice(999, 1000)),
        (999, 1000, slice(999, 1000)),
        (500, 500, slice(0, 0)),
        (10, 20, slice(10, 20)),
        (900, 5000, slice(900, 1000)),  # clipped to the object, as S3 clips
        (1000, None, slice(0, 0)),  # at the end: empty
        (2000, 3000, slice(0, 0)),  # past the end: empty
    ],
)
def test_ranged_reads_at_the_edges(  # noqa: PLR0917  (three fixtures, one table row)
    make_client: Callable[[], S3Client], s3: Any, bucket: str, start: int, end: int | None, expected: slice
) -> None:
    data = bytes(range(250)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    assert run(lambda c: c.get_object(bucket, "r", start=start, end=end), make_client) == data[expected]


def test_reading_an_empty_object(make_client: Callable[[], S3Client], s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")

    async def scenario(client: S3Client) -> tuple[bytes, bytes]:
        return await client.get_object(bucket, "empty"), await client.get_object(
            bucket, "empty", start=0, end=10
        )

    assert run(scenario, make_client) == (b"", b"")


def test_missing_key_and_bucket_map_to_enoent(make_client: Callable[[], S3Client], bucket: str) -> None:
    async def scenario(client: S3Client) -> list[S3Error]:
        found: list[S3Error] = []
        for call in (
            client.get_object(bucket, "missing"),
            client.head_object(bucket, "missing"),
            client.get_object("no-such-bucket-" + uuid.uuid4().hex[:8], "k"),
            client.head_bucket("no-such-bucket-" + uuid.uuid4().hex[:8]),
        ):
            with pytest.raises(S3Error) as raised:
                await call
            found.append(raised.value)
        return found

    get_error, head_error, bucket_error, head_bucket_error = run(scenario, make_client)
    assert isinstance(get_error, NoSuchKey) and isinstance(get_error, NotFound)
    assert get_error.errno == errno.ENOENT and get_error.key == "missing"
    assert f"s3://{bucket}/missing" in str(get_error)
    assert isinstance(head_error, NoSuchKey) and head_error.errno == errno.ENOENT
    assert isinstance(bucket_error, NoSuchBucket) and bucket_error.errno == errno.ENOENT
    assert isinstance(head_bucket_error, NoSuchBucket)


def test_listing_paginates_over_more_than_1000_keys_with_prefixes(
    make_client: Callable[[], S3Client], bucket: str
) -> None:
    keys = [f"many/{n:04d} +%" for n in range(1003)] + ["many/sub/x", "many/sub2/y", "other"]

    async def scenario(client: S3Client) -> None:
        gate = asyncio.Semaphore(32)

        async def put(key: str) -> None:
            async with gate:
                await client.put_object(bucket, key, b"x")

        await asyncio.gather(*(put(key) for key in keys))
        seen: list[str] = []
        prefixes: list[str] = []
        pages = 0
        token: str | None = None
        while True:
            page = await client.list_objects_v2(
                bucket, prefix="many/", continuation_token=token, max_keys=300
            )
            pages += 1
            seen += [o.key for o in page.objects]
            prefixes += page.common_prefixes
            token = page.next_continuation_token
            if token is None:
                break
        assert seen == sorted(k for k in keys if k.startswith("many/") and "/" not in k[5:])
        assert prefixes == ["many/sub/", "many/sub2/"]
        assert pages == 4
        after = await client.list_objects_v2(bucket, prefix="many/", start_after="many/1000 +%", delimiter="")
        assert [o.key for o in after.objects] == ["many/1001 +%", "many/1002 +%", "many/sub/x", "many/sub2/y"]
        # Two DeleteObjects batches (1000 + the rest), then nothing is left.
        await client.delete_objects(bucket, keys)
        assert (await client.list_objects_v2(bucket, delimiter="")).objects == []

    run(scenario, make_client)


def test_multipart_round_trip_keeps_every_byte(
    make_client: Callable[[], S3Client], s3: Any, bucket: str
) -> None:
    data = os.urandom(11 * MIB + 123)
    view = memoryview(data)

    async def scenario(client: S3Client) -> str:
        upload_id = await client.create_multipart_upload(bucket, "big/object")
        bounds = [(1, 0, 5 * MIB), (2, 5 * MIB, 10 * MIB), (3, 10 * MIB, len(data))]
        etags = await asyncio.gather(
            *(client.upload_part(bucket, "big/object", upload_id, n, view[a:b]) for n, a, b in bounds)
        )
        parts = [(n, etag) for (n, _, _), etag in zip(bounds, etags, strict=True)]
        etag = await client.complete_multipart_upload(bucket, "big/object", upload_id, list(reversed(parts)))
        read = await client.get_object(bucket, "big/object")
        assert hashlib.sha256(read).hexdigest() == hashlib.sha256(data).hexdigest()
        middle = await client.get_object(bucket, "big/object", start=5 * MIB - 7, end=5 * MIB + 7)
        assert middle == data[5 * MIB - 7 : 5 * MIB + 7]
        return etag

    etag = run(scenario, make_client)
    assert etag.endswith('-3"')
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key="big/object")["Body"].read()).digest() == (
        hashlib.sha256(data).digest()
    )


def test_aborted_upload_leaves_no_object(make_client: Callable[[], S3Client], s3: Any, bucket: str) -> None:
    async def scenario(client: S3Client) -> None:
        upload_id = await client.create_multipart_upload(bucket, "gone")
        await client.upload_part(bucket, "gone", upload_id, 1, b"x" * 100)
        await client.abort_multipart_upload(bucket, "gone", upload_id)

    run(scenario, make_client)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_list_multipart_uploads_pages_through_uploads_under_a_prefix(
    make_client: Callable[[], S3Client], s3: Any, bucket: str
) -> None:
    started = [("vol/a b+ü%", 2), ("vol/d//e", 1), ("vol/x", 1), ("volume-sibling/y", 1), ("other", 1)]
    expected = []
    for key, count in started:
        for _ in range(count):
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            expected.append((key, upload_id))

    # moto answers every upload in one page whatever max-uploads says; the markers of truncated pages
    # are checked on the wire by test_list_multipart_uploads_follows_the_markers_on_the_wire.
    async def scenario(client: S3Client) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            page = await client.list_multipart_uploads(
                bucket, prefix="vol/", key_marker=key_marker, upload_id_marker=upload_id_marker, max_uploads=1
            )
            assert all(upload.initiated > 0 for upload in page.uploads)
            seen += [(upload.key, upload.upload_id) for upload in page.uploads]
            if not page.is_truncated:
                return seen
            key_marker, upload_id_marker = page.next_key_marker, page.next_upload_id_marker

    seen = run(scenario, make_client)
    assert sorted(seen) == sorted((key, upload_id) for key, upload_id in expected if key.startswith("vol/"))
    everything = run(lambda c: c.list_multipart_uploads(bucket), make_client)
    assert sorted((u.key, u.upload_id) for u in everything.uploads) == sorted(expected)


def test_write_options_reach_s3(make_client: Callable[[], S3Client], s3: Any, bucket: str) -> None:
    options = WriteOptions(storage_class="STANDARD_IA", sse="AES256")

    async def scenario(client: S3Client) -> None:
        await client.put_object(bucket, "opts", b"data", options)
        upload_id = await client.create_multipart_upload(bucket, "opts-mp", options)
        etag = await client.upload_part(bucket, "opts-mp", upload_id, 1, b"part")
        await client.complete_multipart_upload(bucket, "opts-mp", upload_id, [(1, etag)])

    run(scenario, make_client)
    for key in ("opts", "opts-mp"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert (head["StorageClass"], head["ServerSideEncryption"]) == ("STANDARD_IA", "AES256")


def test_copy_object_and_multipart_copy(make_client: Callable[[], S3Client], s3: Any, bucket: str) -> None:
    data = os.urandom(11 * MIB)
    s3.put_object(Bucket=bucket, Key="src dir/ü+", Body=data)

    async def scenario(client: S3Client) -> None:
        await client.copy_object(bucket, "src dir/ü+", "copy/one", WriteOptions(storage_class="STANDARD_IA"))
        # The >5 GiB path, on a small object with small parts: UploadPartCopy with byte ranges.
        await client._copy_multipart(
            bucket, "src dir/ü+", "copy/parts", size=len(data), options=WriteOptions(), part_size=5 * MIB
        )
        with pytest.raises(NoSuchKey):
            await client.copy_object(bucket, "missing", "copy/never")

    run(scenario, make_client)
    assert s3.get_object(Bucket=bucket, Key="copy/one")["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key="copy/one")["StorageClass"] == "STANDARD_IA"
    parts_copy = s3.get_object(Bucket=bucket, Key="copy/parts")
    assert parts_copy["ETag"].endswith('-3"')
    assert parts_copy["Body"].read() == data


def test_copy_part_ranges_cover_the_object_in_at_most_10000_parts() -> None:
    assert copy_part_ranges(10, 4) == [(0, 3), (4, 7), (8, 9)]
    assert copy_part_ranges(8, 4) == [(0, 3), (4, 7)]
    huge = copy_part_ranges(50_000 * 5 * MIB, 5 * MIB)
    assert len(huge) <= 10_000 and huge[-1][1] == 50_000 * 5 * MIB - 1


def test_bucket_lifecycle(make_client: Callable[[], S3Client], s3: Any) -> None:
    name = f"test-{uuid.uuid4().hex[:16]}"

    async def scenario(client: S3Client) -> None:
        await client.create_bucket(name)
        await client.create_bucket(name)  # already ours: success
        await client.head_bucket(name)
        await client.put_object(name, "k", b"v")
        with pytest.raises(BucketNotEmpty) as raised:
            await client.delete_bucket(name)
        assert raised.value.errno == errno.ENOTEMPTY
        await client.delete_objects(name, ["k"])
        await client.delete_bucket(name)
        with pytest.raises(NoSuchBucket):
            await client.head_bucket(name)

    run(scenario, make_client)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_create_bucket_outside_us_east_1_sends_its_location(s3_server: EmbeddedS3Server, s3: Any) -> None:
    name = f"test-{uuid.uuid4().hex[:16]}"
    settings = S3Settings(endpoint_url=s3_server.endpoint_url, region="eu-west-1", force_path_style=True)
    credentials = StaticCredentials(Credentials(s3_server.access_key_id, s3_server.secret_access_key))
    run(lambda c: c.create_bucket(name), lambda: S3Client(settings, credentials))
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"


def test_dead_endpoint_is_unavailable_after_retries() -> None:
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{free_port()}", force_path_style=True, **FAST_RETRIES
    )
    with pytest.raises(S3Unavailable) as raised:
        run(
            lambda c: c.get_object("b", "k"),
            lambda: S3Client(settings, StaticCredentials(Credentials("a", "b"))),
        )
    error = raised.value
    assert isinstance(error, Unavailable)
    assert (error.code, error.status, error.errno) == ("ConnectionError", None, errno.EIO)
    assert "gave up after 3 attempts" in str(error)
    assert "s3://b/k" in str(error)


# ---- what goes on the wire: a recording server ---------------------------------------------------------


@dataclass
class Recorder:
    """Answers each request with the next scripted (status, body), then 200; records what came."""

    script: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    endpoint_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append(request)
        self.paths.append(request.raw_path)
        status, body = self.script.pop(0) if self.script else (200, b"")
        headers = {"ETag": '"e"', "Content-Type": "application/xml"}
        return web.Response(status=status, body=body, headers=headers)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recording = Recorder()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    recording.endpoint_url = f"http://127.0.0.1:{port}"
    # The server runs on its own loop in a thread so the client under test keeps asyncio.run().
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _recorded_client(recorder: Recorder, **settings: Any) -> Callable[[], S3Client]:
    config = S3Settings(
        endpoint_url=recorder.endpoint_url, force_path_style=True, **{**FAST_RETRIES, **settings}
    )
    return lambda: S3Client(config, StaticCredentials(Credentials("AKIDRECORDED", "not-a-real-secret")))


def _error(code: str, message: str = "m") -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


def test_wire_format_user_agent_signature_and_encoded_path(recorder: Recorder) -> None:
    run(
        lambda c: c.put_object("b", "dir/a b+ü%", b"body"),
        _recorded_client(recorder, user_agent_prefix="app/9"),
    )
    request = recorder.requests[0]
    assert recorder.paths == ["/b/dir/a%20b%2B%C3%BC%25"]
    assert request.headers["User-Agent"].startswith("app/9 s3csi/")
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDRECORDED/")
    assert "not-a-real-secret" not in str(dict(request.headers))
    assert request.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_signed_payload_when_asked(recorder: Recorder) -> None:
    run(lambda c: c.put_object("b", "k", b"body"), _recorded_client(recorder, sign_payload=True))
    assert recorder.requests[0].headers["x-amz-content-sha256"] == hashlib.sha256(b"body").hexdigest()


def test_no_sign_request_sends_no_authorization(recorder: Recorder) -> None:
    settings = S3Settings(endpoint_url=recorder.endpoint_url, force_path_style=True, no_sign_request=True)
    run(lambda c: c.head_bucket("b"), lambda: S3Client(settings))
    assert "Authorization" not in recorder.requests[0].headers


def test_throttling_is_retried_then_succeeds(recorder: Recorder) -> None:
    recorder.script = [(503, _error("SlowDown")), (500, _error("InternalError"))]
    assert run(lambda c: c.get_object("b", "k"), _recorded_client(recorder)) == b""
    assert len(recorder.requests) == 3


def test_throttling_that_lasts_gives_unavailable(recorder: Recorder) -> None:
    recorder.script = [(503, _error("SlowDown", "Please reduce your request rate."))] * 3
    with pytest.raises(
        S3Unavailable, match=r"SlowDown \(HTTP 503\): Please reduce your request rate"
    ) as raised:
        run(lambda c: c.get_object("b", "k"), _recorded_client(recorder))
    assert raised.value.errno == errno.EIO
    assert len(recorder.requests) == 3


def test_access_denied_is_never_retried(recorder: Recorder) -> None:
    recorder.script = [(403, _error("AccessDenied", "Access Denied"))]
    with pytest.raises(AccessDenied) as raised:
        run(lambda c: c.get_object("b", "k"), _recorded_client(recorder))
    assert raised.value.errno == errno.EACCES
    assert len(recorder.requests) == 1


def test_a_failed_create_multipart_upload_is_not_repeated(recorder: Recorder) -> None:
    recorder.script = [(500, _error("InternalError"))]
    with pytest.raises(S3Unavailable):
        run(lambda c: c.create_multipart_upload("b", "k"), _recorded_client(recorder))
    assert len(recorder.requests) == 1


def test_an_error_inside_a_200_completion_is_an_error(recorder: Recorder) -> None:
    recorder.script = [(200, _error("InternalError", "We encountered an internal error."))] * 3
    with pytest.raises(S3Unavailable, match="CompleteMultipartUpload"):
        run(lambda c: c.complete_multipart_upload("b", "k", "u", [(1, '"e"')]), _recorded_client(recorder))
    assert len(recorder.requests) == 3


def test_delete_objects_names_the_first_failed_key(recorder: Recorder) -> None:
    failures = (
        b"<DeleteResult><Error><Key>dir/a b</Key><Code>AccessDenied</Code><Message>Access Denied</Message>"
    )
    failures += b"</Error></DeleteResult>"
    recorder.script = [(200, failures)]
    with pytest.raises(AccessDenied, match="s3://b/dir/a b") as raised:
        run(lambda c: c.delete_objects("b", ["dir/a b", "c"]), _recorded_client(recorder))
    assert raised.value.key == "dir/a b"
    request = recorder.requests[0]
    assert recorder.paths == ["/b?delete"]
    assert "Content-MD5" in request.headers


def test_list_multipart_uploads_follows_the_markers_on_the_wire(recorder: Recorder) -> None:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    upload = (
        "<Upload><Key>{}</Key><UploadId>{}</UploadId><Initiated>2026-11-27T05:00:00Z</Initiated></Upload>"
    )
    pages = [
        "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextKeyMarker>p%2Fa+b</NextKeyMarker>"
        "<NextUploadIdMarker>u/1</NextUploadIdMarker>" + upload.format("p%2Fa+b", "u/1"),
        "<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>" + upload.format("p%2Fc", "u2"),
    ]
    recorder.script = [
        (200, f"<ListMultipartUploadsResult {ns}>{page}</ListMultipartUploadsResult>".encode())
        for page in pages
    ]

    async def scenario(client: S3Client) -> list[tuple[str, str]]:
        first = await client.list_multipart_uploads("b", prefix="p/", max_uploads=1)
        assert first.is_truncated
        second = await client.list_multipart_uploads(
            "b",
            prefix="p/",
            key_marker=first.next_key_marker,
            upload_id_marker=first.next_upload_id_marker,
            max_uploads=1,
        )
        assert not second.is_truncated
        return [(u.key, u.upload_id) for u in first.uploads + second.uploads]

    assert run(scenario, _recorded_client(recorder)) == [("p/a b", "u/1"), ("p/c", "u2")]
    assert recorder.paths == [
        "/b?encoding-type=url&max-uploads=1&prefix=p%2F&uploads",
        "/b?encoding-type=url&key-marker=p%2Fa%20b&max-uploads=1&prefix=p%2F&upload-id-marker=u%2F1&uploads",
    ]


# ---- credentials under moto's IAM enforcement ---------------------------------------------------------


@dataclass(frozen=True)
class IamServer:
    server: EmbeddedS3Server
    allowed: Credentials  # a user whose policy allows s3:*
    denied: Credentials  # a user without any policy


@pytest.fixture(scope="module")
def iam_server() -> Iterator[IamServer]:
    with EmbeddedS3Server.start(enforce_iam=True) as server:
        # Create the users while authentication is off, then switch it on for every later request.
        server.allow_unauthenticated_calls(None)
        iam = boto3_client("iam", server)
        users = {}
        for name, policy in (("s3-writer", True), ("s3-nobody", False)):
            iam.create_user(UserName=name)
            if policy:
                document = {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
                iam.put_user_policy(UserName=name, PolicyName="all-s3", PolicyDocument=json.dumps(document))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        server.allow_unauthenticated_calls(0)
        yield IamServer(server, users["s3-writer"], users["s3-nobody"])


def _write_credentials(path: Path, credentials: Credentials, profile: str = "default") -> None:
    path.write_text(
        f"[{profile}]\naws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )


def test_wrong_credentials_are_access_denied(iam_server: IamServer) -> None:
    settings = S3Settings(endpoint_url=iam_server.server.endpoint_url, force_path_style=True, **FAST_RETRIES)
    unknown = Credentials("AKIAUNKNOWNUNKNOWN00", "wrong-secret-value")
    with pytest.raises(AccessDenied) as raised:
        run(lambda c: c.head_bucket("anything"), lambda: S3Client(settings, StaticCredentials(unknown)))
    assert raised.value.errno == errno.EACCES
    assert isinstance(raised.value, PermissionDenied)
    assert "wrong-secret-value" not in str(raised.value)
    with pytest.raises(AccessDenied, match="AccessDenied"):
        run(
            lambda c: c.list_objects_v2("anything"),
            lambda: S3Client(settings, StaticCredentials(iam_server.denied)),
        )
    # A known key id with the wrong secret: the server checks our SigV4 signature and refuses it.
    forged = Credentials(iam_server.allowed.access_key_id, "wrong-secret-value")
    with pytest.raises(AccessDenied) as raised:
        run(lambda c: c.list_objects_v2("anything"), lambda: S3Client(settings, StaticCredentials(forged)))
    assert raised.value.code == "SignatureDoesNotMatch"
    assert "wrong-secret-value" not in str(raised.value)


def test_a_rewritten_credentials_file_is_used_from_the_next_request(
    iam_server: IamServer, tmp_path: Path
) -> None:
    credentials_file = tmp_path / "credentials"
    _write_credentials(credentials_file, iam_server.allowed, profile="team")
    env = {
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_PROFILE": "team",
    }
    settings = S3Settings(endpoint_url=iam_server.server.endpoint_url, force_path_style=True, **FAST_RETRIES)
    bucket = f"rotate-{uuid.uuid4().hex[:12]}"

    async def scenario(client: S3Client) -> None:
        await client.create_bucket(bucket)
        await client.put_object(bucket, "k", b"allowed")
        # Rotate to a user without permissions: the very next request must use (and fail with) it.
        _write_credentials(credentials_file, iam_server.denied, profile="team")
        with pytest.raises(AccessDenied):
            await client.get_object(bucket, "k")
        # And back, in the same client and connection pool: no remount, no restart.
        _write_credentials(credentials_file, iam_server.allowed, profile="team")
        assert await client.get_object(bucket, "k") == b"allowed"

    run(scenario, lambda: S3Client(settings, default_credential_provider(env)))


def test_profile_from_the_config_file(iam_server: IamServer, tmp_path: Path) -> None:
    config_file = tmp_path / "config"
    _write_credentials(config_file, iam_server.allowed, profile="profile ops")
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent"),
        "AWS_CONFIG_FILE": str(config_file),
        "AWS_PROFILE": "ops",
    }
    settings = S3Settings(endpoint_url=iam_server.server.endpoint_url, force_path_style=True)
    bucket = f"config-{uuid.uuid4().hex[:12]}"
    run(lambda c: c.create_bucket(bucket), lambda: S3Client(settings, default_credential_provider(env)))


def test_an_unreadable_ca_bundle_is_named(tmp_path: Path) -> None:
    settings = S3Settings(
        endpoint_url=f"https://127.0.0.1:{free_port()}",
        ca_bundle=str(tmp_path / "missing.pem"),
        **FAST_RETRIES,
    )
    with pytest.raises(InvalidArgument, match=r"missing\.pem"):
        run(
            lambda c: c.head_bucket("b"), lambda: S3Client(settings, StaticCredentials(Credentials("a", "b")))
        )


def test_user_metadata_is_written_read_and_replaced_keeping_bytes_and_content_type(
    make_client: Callable[[], S3Client], s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="big", Body=b"b" * (6 * MIB), ContentType="text/x-big")

    async def scenario(client: S3Client) -> None:
        await client.put_object(bucket, "small", b"bytes", metadata={"mtime": "5", "mode": "33188"})
        data, info = await client.get_whole_object(bucket, "small")
        assert (bytes(data), info.size, dict(info.metadata)) == (b"bytes", 5, {"mtime": "5", "mode": "33188"})
        assert (await client.head_object(bucket, "small")).metadata == {"mtime": "5", "mode": "33188"}
        etag = await client.replace_metadata(bucket, info, {"mtime": "6"})
        assert etag == (await client.head_object(bucket, "small")).etag
        # Part by part, as above 5 GiB: CreateMultipartUpload carries the metadata and content type.
        big = await client.head_object(bucket, "big")
        await client._copy_multipart(
            bucket,
            "big",
            "big",
            size=big.size,
            options=WriteOptions(),
            part_size=5 * MIB,
            metadata={"mode": "33152"},
            content_type=big.content_type,
            if_match=big.etag,
        )
        upload_id = await client.create_multipart_upload(bucket, "multi", metadata={"mtime": "7"})
        part = await client.upload_part(bucket, "multi", upload_id, 1, b"m")
        await client.complete_multipart_upload(bucket, "multi", upload_id, [(1, part)])

    run(scenario, make_client)
    small = s3.head_object(Bucket=bucket, Key="small")
    assert small["Metadata"] == {"mtime": "6"}
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"bytes"
    big = s3.head_object(Bucket=bucket, Key="big")
    assert (big["Metadata"], big["ContentType"], big["ContentLength"]) == (
        {"mode": "33152"},
        "text/x-big",
        6 * MIB,
    )
    assert s3.head_object(Bucket=bucket, Key="multi")["Metadata"] == {"mtime": "7"}

"""The region of a mount that names none: S3's redirect followed once, the instance's region to start from.

A stand-in S3 on 127.0.0.1 holds one bucket "in eu-west-3": it reads each request's SigV4 credential scope
and answers a request signed for another region as AWS does (a 301 PermanentRedirect with the
x-amz-bucket-region header, or a 400 AuthorizationHeaderMalformed naming the region in its body); signed
for eu-west-3, it lists the bucket and serves its object. The instance metadata service is the IMDSv2
stand-in of the credential tests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.errors import S3Error
from s3csi.s3.region import starting_region
from tests.integration.fs_helpers import mounted, run_mount_command
from tests.integration.iam_support import LocalImds

pytestmark = pytest.mark.integration

BUCKET = "far-bucket"
BUCKET_REGION = "eu-west-3"
OBJECTS = {"hello.txt": b"hello from Paris\n"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")
DETECTED = (
    f"bucket {BUCKET} is in region {BUCKET_REGION} (detected from S3's answer; set --region {BUCKET_REGION}"
    " to skip the detection)"
)
NO_REGION = {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}
KEYS = Credentials("AKIDREGIONTEST", "secret-of-the-region-test")


@dataclass
class RegionalS3:
    """What the stand-in saw, and how it answers the wrong region: "301" or "400"; "loop": a 301 naming
    eu-west-3 whatever the region (a store that redirects for ever)."""

    url: str = ""
    mode: str = "301"
    # (method, path, region of the credential scope) of every request, in order.
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    # Wrong-region answers wait until this many have arrived (concurrent first requests), if set.
    barrier: threading.Barrier | None = None

    def redirected(self) -> list[tuple[str, str, str]]:
        return [request for request in self.requests if request[2] != BUCKET_REGION]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stand_in: RegionalS3

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, head: bool) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _answer(self, method: str) -> None:
        stand_in = self.stand_in
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        region = scope.group(1) if scope else ""
        stand_in.requests.append((method, self.path, region))
        head = method == "HEAD"
        if region != BUCKET_REGION or stand_in.mode == "loop":
            if stand_in.barrier is not None:
                stand_in.barrier.wait()
            if stand_in.mode in ("301", "loop"):
                body = (
                    b"<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access "
                    b"must be addressed using the specified endpoint.</Message></Error>"
                )
                self._reply(301, body, {"x-amz-bucket-region": BUCKET_REGION}, head=head)
            elif head:  # a HEAD's 400 has no body: S3 names the region in the header
                self._reply(400, b"", {"x-amz-bucket-region": BUCKET_REGION}, head=head)
            else:
                body = (
                    b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region '"
                    + region.encode()
                    + b"' is wrong; expecting 'eu-west-3'</Message><Region>eu-west-3</Region></Error>"
                )
                self._reply(400, body, head=head)
            return
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        if bucket != BUCKET:
            self._reply(404, b"<Error><Code>NoSuchBucket</Code></Error>", head=head)
        elif not key:
            self._list(parse_qs(parts.query).get("prefix", [""])[0], head=head)
        elif key in OBJECTS:
            self._object(OBJECTS[key], head=head)
        else:
            self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>", head=head)

    def _list(self, prefix: str, *, head: bool) -> None:
        contents = "".join(
            f"<Contents><Key>{key}</Key><LastModified>2026-12-01T00:00:00.000Z</LastModified>"
            f'<ETag>"e"</ETag><Size>{len(data)}</Size></Contents>'
            for key, data in OBJECTS.items()
            if key.startswith(prefix)
        )
        body = f"<ListBucketResult><Name>{BUCKET}</Name><IsTruncated>false</IsTruncated>{contents}"
        body += "</ListBucketResult>"
        self._reply(200, body.encode(), {"Content-Type": "application/xml"}, head=head)

    def _object(self, data: bytes, *, head: bool) -> None:
        headers = {"ETag": '"e"', "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT"}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted is None:
            self._reply(200, data, headers, head=head)
            return
        first = int(wanted.group(1))
        last = min(int(wanted.group(2)) if wanted.group(2) else len(data) - 1, len(data) - 1)
        if first >= len(data):
            self._reply(416, b"", head=head)
            return
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        self._reply(206, data[first : last + 1], headers, head=head)


@pytest.fixture(scope="module")
def regional() -> Iterator[RegionalS3]:
    stand_in = RegionalS3()
    handler = type("Handler", (_Handler,), {"stand_in": stand_in})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stand_in(regional: RegionalS3) -> RegionalS3:
    regional.requests.clear()
    regional.mode, regional.barrier = "301", None
    return regional


@pytest.mark.parametrize("mode", ["301", "400"])
def test_a_mount_without_region_follows_s3_to_the_bucket_region(
    s3_server: EmbeddedS3Server, stand_in: RegionalS3, mode: str
) -> None:
    stand_in.mode = mode
    with mounted(s3_server, BUCKET, "--endpoint-url", stand_in.url, env=NO_REGION) as fs:
        assert (fs.path / "hello.txt").read_bytes() == OBJECTS["hello.txt"]
        assert sorted(p.name for p in fs.path.iterdir()) == ["hello.txt"]
        log = fs.log()
    assert log.count(DETECTED) == 1, log
    # Where the starting region came from: with --endpoint-url the instance metadata service is not asked.
    assert "S3 region us-east-1: no --region, AWS_REGION or AWS_DEFAULT_REGION" in log, log
    # The mount's first request (its check of the bucket) was redirected; every other was signed for
    # eu-west-3, the check's second try included.
    assert len(stand_in.redirected()) == 1, stand_in.requests
    assert stand_in.requests[0][2] == "us-east-1"
    assert len(stand_in.requests) > 2


def test_an_explicit_region_is_kept_and_the_error_names_the_bucket_region(
    s3_server: EmbeddedS3Server, stand_in: RegionalS3, tmp_path: Path
) -> None:
    done = run_mount_command(
        s3_server,
        BUCKET,
        str(tmp_path),
        "--foreground",
        "--endpoint-url",
        stand_in.url,
        "--region",
        "us-east-1",
    )
    assert done.returncode != 0
    assert f"the bucket is in region {BUCKET_REGION}" in done.stderr, done.stderr
    assert "detected from S3's answer" not in done.stderr
    assert [region for _, _, region in stand_in.requests] == ["us-east-1"]


def _client(stand_in: RegionalS3, env: dict[str, str]) -> S3Client:
    return S3Client(S3Settings.from_env(env, endpoint_url=stand_in.url), StaticCredentials(KEYS))


@pytest.mark.parametrize("env", [{"AWS_REGION": "us-east-1"}, {"AWS_DEFAULT_REGION": "eu-west-1"}])
def test_a_region_from_the_environment_is_kept(stand_in: RegionalS3, env: dict[str, str]) -> None:
    stand_in.mode = "400"

    async def scenario() -> S3Error:
        async with _client(stand_in, env) as client:
            with pytest.raises(S3Error) as caught:
                await client.list_objects_v2(BUCKET)
            return caught.value

    error = asyncio.run(scenario())
    assert error.code == "AuthorizationHeaderMalformed"
    assert f"(the bucket is in region {BUCKET_REGION})" in str(error)
    assert len(stand_in.requests) == 1


def test_concurrent_first_requests_switch_once(
    stand_in: RegionalS3, caplog: pytest.LogCaptureFixture
) -> None:
    concurrent = 6
    stand_in.barrier = threading.Barrier(concurrent, timeout=20)

    async def scenario() -> list[list[str]]:
        async with _client(stand_in, {}) as client:
            pages = await asyncio.gather(*(client.list_objects_v2(BUCKET) for _ in range(concurrent)))
            # Later requests go straight to the bucket's region.
            data = await client.get_object(BUCKET, "hello.txt")
            assert data == OBJECTS["hello.txt"]
            return [[info.key for info in page.objects] for page in pages]

    with caplog.at_level(logging.INFO, logger="s3csi.s3.client"):
        keys = asyncio.run(scenario())
    assert keys == [["hello.txt"]] * concurrent
    assert [record.getMessage() for record in caplog.records].count(DETECTED) == 1
    # Every first request was redirected and sent again once; the GetObject was not redirected.
    assert len(stand_in.redirected()) == concurrent
    assert len(stand_in.requests) == 2 * concurrent + 1


def test_a_redirect_after_the_switch_is_the_error(stand_in: RegionalS3) -> None:
    """A store that redirects whatever the region never makes the client loop: one switch, one more
    try, then S3's answer is the error."""
    stand_in.mode = "loop"

    async def scenario() -> list[S3Error]:
        errors = []
        async with _client(stand_in, {}) as client:
            for _ in range(2):
                with pytest.raises(S3Error) as caught:
                    await client.head_object(BUCKET, "hello.txt")
                errors.append(caught.value)
        return errors

    errors = asyncio.run(scenario())
    assert [error.status for error in errors] == [301, 301]
    assert [region for _, _, region in stand_in.requests] == ["us-east-1", BUCKET_REGION, BUCKET_REGION]


@pytest.fixture(scope="module")
def imds() -> Iterator[LocalImds]:
    service = LocalImds("node-instance", KEYS)
    try:
        yield service
    finally:
        service.stop()


REGION_READS = "GET /latest/meta-data/placement/region"


def _starting(env: dict[str, str], **overrides: str) -> S3Settings:
    return asyncio.run(starting_region(S3Settings.from_env(env, **overrides), env))


def test_the_instance_region_is_where_a_mount_without_region_starts(imds: LocalImds) -> None:
    imds.region = "ap-southeast-2"
    settings = _starting({"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
    assert (settings.region, settings.detect_region) == ("ap-southeast-2", True)
    endpoint = S3Client(settings, StaticCredentials(KEYS)).endpoint(BUCKET)
    assert (endpoint.netloc, endpoint.signing_region) == (
        f"{BUCKET}.s3.ap-southeast-2.amazonaws.com",
        "ap-southeast-2",
    )
    assert REGION_READS in imds.requests


@pytest.mark.parametrize(
    ("env", "overrides", "region", "asks"),
    [
        # Instance metadata that does not say: us-east-1.
        ({}, {}, "us-east-1", True),
        # Disabled: not asked.
        ({"AWS_EC2_METADATA_DISABLED": "true"}, {}, "us-east-1", False),
        # An S3-compatible store: not asked.
        ({}, {"endpoint_url": "http://127.0.0.1:9"}, "us-east-1", False),
        # A region given: kept, not asked.
        ({"AWS_REGION": "eu-north-1"}, {}, "eu-north-1", False),
        ({}, {"region": "sa-east-1"}, "sa-east-1", False),
    ],
)
def test_where_the_starting_region_comes_from(
    imds: LocalImds, env: dict[str, str], overrides: dict[str, str], region: str, asks: bool
) -> None:
    imds.region = None
    imds.requests.clear()
    settings = _starting({"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url, **env}, **overrides)
    assert settings.region == region
    assert (REGION_READS in imds.requests) is asks

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from s3csi.errors import AlreadyExists, Internal, NotFound, S3csiError, Unavailable
from s3csi.podmounter.protocol import (
    MAX_MESSAGE_BYTES,
    MountRequest,
    ProtocolError,
    decode_reply,
    decode_request,
    encode,
    error_reply,
    ready_reply,
    reason_of,
)
from s3csi.s3.errors import NoSuchBucket, S3Error

GOOD: dict[str, Any] = {
    "version": 1,
    "volume_id": "vol-1",
    "bucket": "my-bucket",
    "prefix": "env=prod/",
    "args": ["--allow-other", "--gid=1001", "--uid=1001"],
    "env": {
        "region": "us-east-1",
        "endpoint_url": "http://127.0.0.1:9000",
        "force_path_style": True,
        "credentials_file": "credentials/credentials",
    },
}


def with_(path: str, value: Any) -> bytes:
    message = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = message
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return json.dumps(message).encode()


DELETE = object()


def test_a_good_request_round_trips() -> None:
    assert decode_request(encode(cast(MountRequest, GOOD))) == GOOD


def test_credentials_file_may_be_null_and_is_normalised() -> None:
    assert decode_request(with_("env.credentials_file", None))["env"]["credentials_file"] is None
    assert decode_request(with_("env.credentials_file", "./credentials//c"))["env"]["credentials_file"] == (
        "credentials/c"
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (with_("version", DELETE), "missing field 'version'"),
        (with_("version", 2), "unsupported version 2"),
        (with_("version", True), "'version' must be int"),
        (with_("version", "1"), "'version' must be int"),
        (with_("volume_id", DELETE), "missing field 'volume_id'"),
        (with_("volume_id", ""), "must not be empty"),
        (with_("bucket", DELETE), "missing field 'bucket'"),
        (with_("bucket", 7), "'bucket' must be str"),
        (with_("prefix", DELETE), "missing field 'prefix'"),
        (with_("args", DELETE), "missing field 'args'"),
        (with_("args", "--uid=1"), "'args' must be list"),
        (with_("args", ["--uid", 1]), "list of strings"),
        (with_("env", DELETE), "missing field 'env'"),
        (with_("env.region", DELETE), "env: missing field 'region'"),
        (with_("env.force_path_style", "yes"), "'force_path_style' must be bool"),
        (with_("env.endpoint_url", 1), "'endpoint_url' must be str or null"),
        (with_("env.credentials_file", "/etc/shadow"), "inside the comm dir"),
        (with_("env.credentials_file", "../x"), "inside the comm dir"),
        (with_("env.credentials_file", "a/../../x"), "inside the comm dir"),
        (with_("env.aws_secret_access_key", "never"), "unknown field(s) 'aws_secret_access_key'"),
        (with_("token", "never"), "unknown field(s) 'token'"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_error(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode_request(data)
    assert error in str(raised.value)
    assert "never" not in str(raised.value)  # a refused secret is not echoed


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (encode(ready_reply()), {"version": 1, "status": "ready"}),
        (
            encode(error_reply(NotFound("bucket not found"))),
            {"version": 1, "status": "error", "message": "bucket not found", "reason": "NotFound"},
        ),
    ],
)
def test_replies(data: bytes, expected: dict[str, Any]) -> None:
    assert decode_reply(data) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"version": 1, "status": "maybe"}', "unknown status 'maybe'"),
        (b'{"version": 1, "status": "error", "reason": "NotFound"}', "missing field 'message'"),
        (b'{"version": 1, "status": "error", "message": "x"}', "missing field 'reason'"),
        (
            b'{"version": 1, "status": "error", "message": "x", "reason": "KeyError"}',
            "unknown reason 'KeyError'",
        ),
        (b'{"version": 0, "status": "ready"}', "unsupported version 0"),
        (b'{"status": "ready"}', "missing field 'version'"),
        (b"", "not UTF-8 JSON"),
    ],
)
def test_bad_replies(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        decode_reply(data)


def test_encode_bounds_the_size() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        encode(cast(MountRequest, {**GOOD, "args": ["x" * MAX_MESSAGE_BYTES]}))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotFound("x"), "NotFound"),
        (NoSuchBucket("x", code="NoSuchBucket"), "NotFound"),  # an S3 error reports its CSI kind
        (S3Error("x", code="InternalError"), "Unavailable"),  # an S3 error of no particular kind
        (S3csiError("x"), "Unavailable"),
        (AlreadyExists("x"), "AlreadyExists"),
        (Internal("x"), "Internal"),
        (Unavailable("x"), "Unavailable"),
        (KeyError("x"), "Internal"),
    ],
)
def test_reason_of(error: BaseException, reason: str) -> None:
    assert reason_of(error) == reason

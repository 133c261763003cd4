"""SigV4 headers from botocore's signer: what is signed, and that nothing secret is logged."""

from __future__ import annotations

import hashlib
import logging

import pytest

from s3csi.s3.credentials import Credentials
from s3csi.s3.signing import EMPTY_SHA256, UNSIGNED_PAYLOAD, payload_hash, sign

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "session-token-value"


@pytest.mark.parametrize(
    ("body", "signed", "expected"),
    [
        (b"", False, EMPTY_SHA256),
        (b"", True, EMPTY_SHA256),
        (b"data", True, hashlib.sha256(b"data").hexdigest()),
        (memoryview(b"data"), True, hashlib.sha256(b"data").hexdigest()),
        (b"data", False, UNSIGNED_PAYLOAD),
    ],
)
def test_payload_hash(body: bytes | memoryview, signed: bool, expected: str) -> None:
    assert payload_hash(body, sign=signed) == expected


def test_signed_headers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = sign(
        "GET",
        "http://127.0.0.1:9000/b/a%20b?partNumber=1&uploadId=x",
        {"Range": "bytes=0-9"},
        content_sha256=EMPTY_SHA256,
        credentials=Credentials("AKIDEXAMPLE", SECRET, TOKEN),
        region="eu-west-1",
    )
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/s3/aws4_request" in authorization
    assert "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token" in authorization
    assert headers["X-Amz-Content-SHA256"] == EMPTY_SHA256
    assert headers["X-Amz-Security-Token"] == TOKEN
    assert SECRET not in str(headers)
    # botocore logs the canonical request and the signature at DEBUG; neither may reach our logs.
    signature = authorization.rpartition("Signature=")[2]
    assert all(signature not in record.getMessage() for record in caplog.records)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_signature_depends_on_every_signed_part() -> None:
    def signature(url: str, secret: str = SECRET) -> str:
        credentials = Credentials("AKIDEXAMPLE", secret)
        headers = sign(
            "GET", url, {}, content_sha256=EMPTY_SHA256, credentials=credentials, region="us-east-1"
        )
        return headers["Authorization"].rpartition("Signature=")[2]

    base = signature("http://h/b/k")
    assert signature("http://h/b/k2") != base
    assert signature("http://h/b/k?x=1") != base
    assert signature("http://h/b/k", "other-secret") != base

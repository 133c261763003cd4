"""S3's XML bodies: recorded responses parsed, request bodies built."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from s3csi.s3 import wire

LIST_URL_ENCODED = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>dir%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys>
  <Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <Contents><Key>dir%2Fa+b%2Bc</Key><LastModified>2026-11-27T05:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>dir%2F%C3%BC%25</Key><LastModified>2026-11-27T05:00:01.500Z</LastModified>
    <ETag>"def-2"</ETag><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>dir%2Fsub+dir%2F</Prefix></CommonPrefixes>
  <NextContinuationToken>token/+=</NextContinuationToken>
</ListBucketResult>"""

LIST_LAST_PAGE_PLAIN = b"""<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><IsTruncated>false</IsTruncated>
  <Contents><Key>a+b</Key><LastModified>2026-11-27T05:00:00Z</LastModified><ETag>"x"</ETag><Size>1</Size></Contents>
</ListBucketResult>"""


def test_list_page_decodes_url_encoding() -> None:
    page = wire.parse_list_objects_v2(LIST_URL_ENCODED)
    assert [(o.key, o.size, o.etag) for o in page.objects] == [
        ("dir/a b+c", 12, '"abc"'),
        ("dir/ü%", 0, '"def-2"'),
    ]
    assert page.objects[0].last_modified == datetime(2026, 11, 27, 5, 0, tzinfo=UTC).timestamp()
    assert page.objects[1].last_modified == datetime(2026, 11, 27, 5, 0, 1, 500000, tzinfo=UTC).timestamp()
    assert page.common_prefixes == ["dir/sub dir/"]
    assert page.next_continuation_token == "token/+="


def test_last_page_without_encoding_type_is_taken_literally() -> None:
    page = wire.parse_list_objects_v2(LIST_LAST_PAGE_PLAIN)
    assert [o.key for o in page.objects] == ["a+b"]
    assert page.next_continuation_token is None


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<Error><Code>x</Code></Error>",
        b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>k</Key><Size>1</Size><LastModified>yesterday</LastModified>"
        b"</Contents></ListBucketResult>",
    ],
)
def test_malformed_listings_are_refused(body: bytes) -> None:
    with pytest.raises(wire.MalformedResponse):
        wire.parse_list_objects_v2(body)


def _uploads_body(inner: str) -> bytes:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    return f"<ListMultipartUploadsResult {ns}><Bucket>b</Bucket>{inner}</ListMultipartUploadsResult>".encode()


def _upload(key: str, upload_id: str, initiated: str = "2026-11-27T05:00:00.000Z") -> str:
    owner = "<Owner><ID>o</ID><DisplayName>d</DisplayName></Owner>"
    return (
        f"<Upload><Key>{key}</Key><UploadId>{upload_id}</UploadId><Initiator><ID>i</ID></Initiator>"
        f"{owner}<StorageClass>STANDARD</StorageClass><Initiated>{initiated}</Initiated></Upload>"
    )


T0 = datetime(2026, 11, 27, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            _uploads_body(
                "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                "<NextKeyMarker>dir%2F%C3%BC%25</NextKeyMarker><NextUploadIdMarker>up+2/=</NextUploadIdMarker>"
                "<EncodingType>url</EncodingType><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
                + _upload("dir%2Fa+b%2Bc", "up+1/=")
                + _upload("dir%2F%C3%BC%25", "up+2/=", "2026-11-27T05:00:01.500Z")
            ),
            wire.MultipartUploadPage(
                uploads=[
                    wire.MultipartUpload("dir/a b+c", "up+1/=", T0),
                    wire.MultipartUpload("dir/ü%", "up+2/=", T0 + 1.5),
                ],
                next_key_marker="dir/ü%",
                next_upload_id_marker="up+2/=",
                is_truncated=True,
            ),
            id="url-encoded-truncated",
        ),
        pytest.param(
            _uploads_body(
                "<KeyMarker>a+b</KeyMarker><NextKeyMarker>a+b</NextKeyMarker>"
                "<NextUploadIdMarker>u9</NextUploadIdMarker><IsTruncated>false</IsTruncated>"
                + _upload("a+b", "u9", "2026-11-27T05:00:00Z")
            ),
            wire.MultipartUploadPage(
                [wire.MultipartUpload("a+b", "u9", T0)], "a+b", "u9", is_truncated=False
            ),
            id="plain-last-page",
        ),
        pytest.param(
            _uploads_body("<IsTruncated>false</IsTruncated><NextKeyMarker/><NextUploadIdMarker/>"),
            wire.MultipartUploadPage([], None, None, is_truncated=False),
            id="empty",
        ),
        pytest.param(
            _uploads_body(
                "<IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker>" + _upload("k", "u1")
            ),
            wire.MultipartUploadPage([wire.MultipartUpload("k", "u1", T0)], "k", None, is_truncated=True),
            id="truncated-without-upload-id-marker",
        ),
    ],
)
def test_multipart_upload_listing(body: bytes, expected: wire.MultipartUploadPage) -> None:
    assert wire.parse_list_multipart_uploads(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not xml", id="not-xml"),
        pytest.param(b"<ListBucketResult/>", id="other-root"),
        pytest.param(_uploads_body("<IsTruncated>true</IsTruncated>"), id="truncated-without-marker"),
        pytest.param(_uploads_body("<IsTruncated>true</IsTruncated><NextKeyMarker/>"), id="empty-marker"),
        pytest.param(
            _uploads_body(
                "<Upload><UploadId>u</UploadId><Initiated>2026-11-27T05:00:00Z</Initiated></Upload>"
            ),
            id="no-key",
        ),
        pytest.param(
            _uploads_body("<Upload><Key>k</Key><Initiated>2026-11-27T05:00:00Z</Initiated></Upload>"),
            id="no-upload-id",
        ),
        pytest.param(_uploads_body(_upload("k", "u", "yesterday")), id="bad-initiated"),
    ],
)
def test_malformed_multipart_upload_listings_are_refused(body: bytes) -> None:
    with pytest.raises(wire.MalformedResponse):
        wire.parse_list_multipart_uploads(body)


def test_error_body_reads_code_and_message_only() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature does not match.</Message>
<AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign>
<SignatureProvided>deadbeef</SignatureProvided><RequestId>1</RequestId></Error>"""
    parsed = wire.parse_error(body)
    assert parsed == wire.ErrorBody(
        code="SignatureDoesNotMatch", message="The request signature does not match."
    )


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"Service Unavailable", b"<Error"])
def test_non_error_bodies_give_none(body: bytes) -> None:
    assert wire.parse_error(body) is None


def test_error_body_with_region() -> None:
    body = b"<Error><Code>PermanentRedirect</Code><Message>m</Message><Region>eu-west-1</Region></Error>"
    assert wire.parse_error(body) == wire.ErrorBody("PermanentRedirect", "m", "eu-west-1")


def test_upload_id_and_etag_results() -> None:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    initiate = f"<InitiateMultipartUploadResult {ns}><Bucket>b</Bucket><Key>k</Key>"
    initiate += "<UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
    assert wire.parse_upload_id(initiate.encode()) == "up-1"
    complete = f'<CompleteMultipartUploadResult {ns}><ETag>"e-3"</ETag></CompleteMultipartUploadResult>'
    assert wire.parse_etag_result(complete.encode()) == '"e-3"'


def test_delete_failures() -> None:
    body = b"""<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Error><Key>a b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
<Error><Key>c</Key><Code>InternalError</Code><Message>oops</Message></Error></DeleteResult>"""
    assert wire.parse_delete_failures(body) == [
        wire.DeleteFailure("a b", "AccessDenied", "Access Denied"),
        wire.DeleteFailure("c", "InternalError", "oops"),
    ]
    assert wire.parse_delete_failures(b"<DeleteResult/>") == []


def _texts(body: bytes, path: str) -> list[str]:
    ns = {"s3": wire.NAMESPACE}
    return [element.text or "" for element in ET.fromstring(body).findall(path, ns)]


def test_complete_body_lists_parts_in_order() -> None:
    body = wire.complete_multipart_body([(2, '"b"'), (1, '"a"')])
    assert _texts(body, "s3:Part/s3:PartNumber") == ["1", "2"]
    assert _texts(body, "s3:Part/s3:ETag") == ['"a"', '"b"']


def test_delete_body_escapes_keys_and_is_quiet() -> None:
    body = wire.delete_objects_body(["a&b", "<c>", "ü"])
    assert _texts(body, "s3:Quiet") == ["true"]
    assert _texts(body, "s3:Object/s3:Key") == ["a&b", "<c>", "ü"]


def test_create_bucket_body() -> None:
    assert _texts(wire.create_bucket_body("eu-west-1"), "s3:LocationConstraint") == ["eu-west-1"]


def test_http_date() -> None:
    assert (
        wire.parse_http_date("Fri, 27 Nov 2026 05:00:00 GMT")
        == datetime(2026, 11, 27, 5, tzinfo=UTC).timestamp()
    )
    with pytest.raises(wire.MalformedResponse):
        wire.parse_http_date("soon")

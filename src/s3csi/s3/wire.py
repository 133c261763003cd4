"""S3's XML bodies: parsing responses and building requests. Pure; tested with recorded bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_plus

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass(frozen=True)
class ObjectInfo:
    """One object. ``etag`` is as S3 sends it (quoted); ``last_modified`` in epoch seconds.

    ``metadata`` (user metadata, keys without ``x-amz-meta-``, lower case) and ``content_type`` come
    only from HeadObject: a listing has neither (``metadata`` empty, ``content_type`` None)."""

    key: str
    size: int
    etag: str
    last_modified: float
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True)
class ListPage:
    """One page of ListObjectsV2; ``next_continuation_token`` is None on the last page."""

    objects: list[ObjectInfo]
    common_prefixes: list[str]
    next_continuation_token: str | None


@dataclass(frozen=True)
class MultipartUpload:
    """One upload in progress (started, neither completed nor aborted); ``initiated`` in epoch seconds."""

    key: str
    upload_id: str
    initiated: float


@dataclass(frozen=True)
class MultipartUploadPage:
    """One page of ListMultipartUploads. When ``is_truncated``, pass ``next_key_marker`` and
    ``next_upload_id_marker`` back as ``key_marker`` and ``upload_id_marker`` for the next page."""

    uploads: list[MultipartUpload]
    next_key_marker: str | None
    next_upload_id_marker: str | None
    is_truncated: bool


@dataclass(frozen=True)
class ErrorBody:
    code: str
    message: str
    region: str | None = None


@dataclass(frozen=True)
class DeleteFailure:
    key: str
    code: str
    message: str


class MalformedResponse(ValueError):
    """A body that is not the XML S3 sends for this call."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _parse(body: bytes | bytearray) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedResponse(f"not XML: {exc}") from None


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _children(element: ET.Element, name: str) -> Iterable[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _required(element: ET.Element, name: str) -> str:
    text = _child_text(element, name)
    if text is None:
        raise MalformedResponse(f"<{_local(element.tag)}> has no <{name}>")
    return text


def parse_timestamp(text: str) -> float:
    """ISO 8601 (``2026-11-27T05:00:00.000Z``, in XML) → epoch seconds."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise MalformedResponse(f"bad timestamp {text!r}") from None


def parse_http_date(text: str) -> float:
    """RFC 7231 (``Fri, 27 Nov 2026 05:00:00 GMT``, in headers) → epoch seconds."""
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        raise MalformedResponse(f"bad HTTP date {text!r}") from None


def parse_error(body: bytes | bytearray) -> ErrorBody | None:
    """``<Error><Code>…</Code><Message>…</Message></Error>``, or None when the body is not one.
    Only Code, Message and Region are read: other fields may echo the request's signature."""
    if not body.lstrip().startswith(b"<"):
        return None
    try:
        root = _parse(body)
    except MalformedResponse:
        return None
    if _local(root.tag) != "Error":
        return None
    return ErrorBody(
        code=_child_text(root, "Code") or "",
        message=_child_text(root, "Message") or "",
        region=_child_text(root, "Region"),
    )


def parse_list_objects_v2(body: bytes | bytearray) -> ListPage:
    root = _parse_root(body, "ListBucketResult")
    decode = _key_decoder(root)
    objects = [
        ObjectInfo(
            key=decode(_required(item, "Key")),
            size=int(_required(item, "Size")),
            etag=_child_text(item, "ETag") or "",
            last_modified=parse_timestamp(_required(item, "LastModified")),
        )
        for item in _children(root, "Contents")
    ]
    prefixes = [decode(_required(item, "Prefix")) for item in _children(root, "CommonPrefixes")]
    truncated = _child_text(root, "IsTruncated") == "true"
    token = _child_text(root, "NextContinuationToken") if truncated else None
    if truncated and not token:
        raise MalformedResponse("a truncated listing without <NextContinuationToken>")
    return ListPage(objects=objects, common_prefixes=prefixes, next_continuation_token=token)


def _parse_root(body: bytes | bytearray, root_tag: str) -> ET.Element:
    root = _parse(body)
    if _local(root.tag) != root_tag:
        raise MalformedResponse(f"expected <{root_tag}>, got <{_local(root.tag)}>")
    return root


def _key_decoder(root: ET.Element) -> Callable[[str], str]:
    """How to read keys and prefixes: URL-decoded when the listing says it encoded them."""
    return unquote_plus if _child_text(root, "EncodingType") == "url" else _identity


def _identity(text: str) -> str:
    return text


def parse_list_multipart_uploads(body: bytes | bytearray) -> MultipartUploadPage:
    root = _parse_root(body, "ListMultipartUploadsResult")
    # With encoding-type=url, S3 encodes Key and NextKeyMarker (not the upload ids).
    decode = _key_decoder(root)
    uploads = [
        MultipartUpload(
            key=decode(_required(item, "Key")),
            upload_id=_required(item, "UploadId"),
            initiated=parse_timestamp(_required(item, "Initiated")),
        )
        for item in _children(root, "Upload")
    ]
    truncated = _child_text(root, "IsTruncated") == "true"
    next_key = _child_text(root, "NextKeyMarker") or None
    next_upload_id = _child_text(root, "NextUploadIdMarker") or None
    if truncated and next_key is None:
        # Without it the next page would start over: a caller would loop for ever.
        raise MalformedResponse("a truncated listing without <NextKeyMarker>")
    return MultipartUploadPage(
        uploads=uploads,
        next_key_marker=decode(next_key) if next_key is not None else None,
        next_upload_id_marker=next_upload_id,
        is_truncated=truncated,
    )


def parse_upload_id(body: bytes | bytearray) -> str:
    return _required(_parse(body), "UploadId")


def parse_etag_result(body: bytes | bytearray) -> str:
    """The ETag of CompleteMultipartUploadResult, CopyObjectResult or CopyPartResult."""
    return _required(_parse(body), "ETag")


def parse_delete_failures(body: bytes | bytearray) -> list[DeleteFailure]:
    root = _parse(body)
    return [
        DeleteFailure(
            key=_child_text(item, "Key") or "",
            code=_child_text(item, "Code") or "",
            message=_child_text(item, "Message") or "",
        )
        for item in _children(root, "Error")
    ]


def _document(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def complete_multipart_body(
    parts: Sequence[tuple[int, str]], crc32c: Mapping[int, str] | None = None
) -> bytes:
    """``crc32c``: each part's checksum by part number, for an upload created with CRC32C checksums."""
    root = ET.Element("CompleteMultipartUpload", xmlns=NAMESPACE)
    for number, etag in sorted(parts):
        part = ET.SubElement(root, "Part")
        ET.SubElement(part, "PartNumber").text = str(number)
        ET.SubElement(part, "ETag").text = etag
        if crc32c is not None:
            ET.SubElement(part, "ChecksumCRC32C").text = crc32c[number]
    return _document(root)


def delete_objects_body(keys: Sequence[str]) -> bytes:
    """Quiet mode: the answer lists only the failures."""
    root = ET.Element("Delete", xmlns=NAMESPACE)
    ET.SubElement(root, "Quiet").text = "true"
    for key in keys:
        ET.SubElement(ET.SubElement(root, "Object"), "Key").text = key
    return _document(root)


def create_bucket_body(region: str) -> bytes:
    root = ET.Element("CreateBucketConfiguration", xmlns=NAMESPACE)
    ET.SubElement(root, "LocationConstraint").text = region
    return _document(root)

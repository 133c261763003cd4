"""The pure parts of GetObject's HTTP/1.1 transport: response heads, body framing, chunked bodies, Host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from botocore.auth import _host_from_url  # the signer's own rule, which ours must match

from s3csi.s3.http1 import (
    ChunkedDecoder,
    ConnectionLost,
    Framing,
    framing,
    host_header,
    parse_head,
    uninitialized_buffer,
)


@pytest.mark.parametrize(
    ("head", "status", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK", 200, True),
        (b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3", 206, True),
        (b"HTTP/1.1 404", 404, True),  # the reason phrase may be missing
        (b"HTTP/1.1 200 OK\r\nConnection: close", 200, False),
        (b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close", 200, False),
        (b"HTTP/1.0 200 OK", 200, False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive", 200, True),
    ],
)
def test_status_line_and_keep_alive(head: bytes, status: int, keep_alive: bool) -> None:
    parsed = parse_head(head)
    assert (parsed.status, parsed.keep_alive) == (status, keep_alive)


def test_header_fields_are_case_insensitive_repeatable_and_trimmed() -> None:
    head = parse_head(b'HTTP/1.1 200 OK\r\netag:  "e" \r\nX-Amz-Meta-A: 1\r\nx-amz-meta-a: 2\r\nEmpty:')
    assert head.headers["ETag"] == '"e"'
    assert head.headers.getall("X-AMZ-META-A") == ["1", "2"]
    assert head.headers["Empty"] == ""


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<html>",
        b"HTTP/2 200 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 OK",
        b"HTTP/1.1 200 OK\r\nno colon here",
        b"HTTP/1.1 200 OK\r\n folded: value",
        b"HTTP/1.1 200 OK\r\nName : value",
        b"HTTP/1.1 200 OK\r\n: no name",
    ],
)
def test_what_is_not_an_http_response_head(head: bytes) -> None:
    with pytest.raises(ConnectionLost):
        parse_head(head)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"HTTP/1.1 206 Partial Content\r\nContent-Length: 8388608", Framing(8388608)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0", Framing(0)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5", Framing(5)),  # a repeated value is one value
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5", Framing(5)),
        (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked", Framing(None, chunked=True)),
        # Transfer-Encoding wins over Content-Length (RFC 9112 section 6.3).
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9", Framing(None, chunked=True)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked", Framing(None, chunked=True)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", Framing(None)),  # until the connection closes
        (b"HTTP/1.1 200 OK", Framing(None)),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 10", Framing(0)),
        (b"HTTP/1.1 304 Not Modified", Framing(0)),
    ],
)
def test_body_framing(head: bytes, expected: Framing) -> None:
    assert framing(parse_head(head)) == expected


@pytest.mark.parametrize("length", ["5, 6", "-1", "five", "0x10", ""])
def test_a_bad_content_length_is_refused(length: str) -> None:
    head = parse_head(f"HTTP/1.1 200 OK\r\nContent-Length: {length}".encode())
    with pytest.raises(ConnectionLost, match="Content-Length"):
        framing(head)


def test_until_close_only_without_length_or_chunks() -> None:
    assert Framing(None).until_close
    assert not Framing(None, chunked=True).until_close
    assert not Framing(0).until_close


CHUNKED = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"


@pytest.mark.parametrize("piece", [len(CHUNKED), 1, 2, 3, 7])
def test_chunked_body_in_any_pieces(piece: int) -> None:
    decoder = ChunkedDecoder()
    done = [decoder.feed(CHUNKED[i : i + piece]) for i in range(0, len(CHUNKED), piece)]
    assert done[-1] and not any(done[:-1])
    assert bytes(decoder.body) == b"Wikipedia in\r\n\r\nchunks."


def test_an_empty_chunked_body() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"0\r\n\r\n")
    assert decoder.body == b""
    assert not decoder.overrun


def test_bytes_after_the_last_chunk_are_an_overrun() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK")
    assert decoder.body == b"a" and decoder.overrun


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"zz\r\n", "chunk size"),
        (b"-1\r\n", "chunk size"),
        (b"\r\n", "chunk size"),
        (b"3\r\nabcd\r\n", "longer than its size"),
        (b"1" * 70_000, "without an end"),
    ],
)
def test_malformed_chunked_bodies(body: bytes, match: str) -> None:
    with pytest.raises(ConnectionLost, match=match):
        ChunkedDecoder().feed(body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:80/b/k",
        "http://127.0.0.1:9000/b/k",
        "https://s3.eu-west-1.amazonaws.com/b/k",
        "https://s3.eu-west-1.amazonaws.com:443/b/k",
        "https://minio.example:8443/b/k",
        "http://bucket.s3.example:443/k",
        "http://[::1]:9000/b/k",
        "https://[::1]/b/k",
        "http://Upper.Example/b",
    ],
)
def test_host_header_is_the_one_botocore_signs(url: str) -> None:
    parts = urlsplit(url)
    assert host_header(parts.scheme, parts.hostname or "", parts.port) == _host_from_url(url)


def test_uninitialized_buffer_is_a_bytearray_of_the_size() -> None:
    buffer = uninitialized_buffer(3 * 1024 * 1024)
    assert type(buffer) is bytearray and len(buffer) == 3 * 1024 * 1024
    buffer[-1:] = b"x"
    assert buffer[-1:] == b"x"
    assert uninitialized_buffer(0) == bytearray()

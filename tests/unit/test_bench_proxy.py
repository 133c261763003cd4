"""The counting proxy's request splitter: one entry per HTTP/1.1 request, whatever the body framing."""

from __future__ import annotations

import pytest

from bench.proxy import RequestCounter

GET = b"GET /bench?list-type=2&prefix=small%2F HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
PUT = b"PUT /bench/key?partNumber=1 HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
# A body that itself looks like a request head must not be counted.
TRICKY_PUT = b"PUT /bench/k HTTP/1.1\r\ncontent-length: 22\r\n\r\nGET /x HTTP/1.1\r\n\r\nabc"
CHUNKED = (
    b"PUT /bench/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-trailer: y\r\n\r\n"
)
EXPECTED = ["GET /bench?list-type=2&prefix=small%2F", "PUT /bench/key?partNumber=1"]


def test_pipelined_requests_in_one_piece() -> None:
    counter = RequestCounter()
    counter.feed(GET + PUT + TRICKY_PUT + CHUNKED + GET)
    assert counter.requests == [*EXPECTED, "PUT /bench/k", "PUT /bench/c", EXPECTED[0]]


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_any_split_of_the_stream_counts_the_same(piece: int) -> None:
    stream = GET + PUT + TRICKY_PUT + CHUNKED + GET
    counter = RequestCounter()
    for start in range(0, len(stream), piece):
        counter.feed(stream[start : start + piece])
    assert counter.requests == [*EXPECTED, "PUT /bench/k", "PUT /bench/c", EXPECTED[0]]


def test_a_head_not_yet_complete_is_not_counted() -> None:
    counter = RequestCounter()
    counter.feed(GET[:-2])
    assert counter.requests == []
    counter.feed(GET[-2:])
    assert counter.requests == [EXPECTED[0]]

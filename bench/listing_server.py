"""A stand-in S3 endpoint holding one directory of N empty objects, for listing it through a mount.

    python -m bench.listing_server --port PORT --bucket NAME --prefix big/ --count 100000

Why not s3rver or moto: both answer every ListObjectsV2 page by going over the whole directory (s3rver
reads the directory of its files, moto sorts every key of the bucket), so listing 100,000 keys costs
them minutes, and creating them by PUT 6 minutes or more on the benchmark's machine (300 and 230 PUTs
a second): the figure would be the server's. This one generates the keys ``PREFIX object-000000`` …
once, in order, and answers a page with a binary search, so the mount's own cost is what is measured.

It answers what a mount asks while it lists (path-style, signatures not checked): ListObjectsV2 with
prefix, delimiter, max-keys, continuation-token, start-after and encoding-type=url, as S3 formats it;
HEAD and GET of an object (empty) and HEAD of the bucket. Anything else is a 501.
"""

from __future__ import annotations

import argparse
import bisect
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'  # MD5 of no bytes
LAST_MODIFIED = "2026-01-01T00:00:00.000Z"
HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
MAX_KEYS = 1000


def object_keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}object-{index:06d}" for index in range(count)]


def list_page(
    keys: Sequence[str], prefix: str, delimiter: str, *, start: int, start_after: str, max_keys: int
) -> tuple[list[str], list[str], int | None]:
    """Objects and common prefixes of one page of sorted ``keys``, and the index to continue from."""
    index = max(start, bisect.bisect_left(keys, prefix), bisect.bisect_right(keys, start_after))
    objects: list[str] = []
    prefixes: list[str] = []
    while index < len(keys) and keys[index].startswith(prefix) and len(objects) + len(prefixes) < max_keys:
        key = keys[index]
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            objects.append(key)
            index += 1
            continue
        common = key[: cut + len(delimiter)]
        prefixes.append(common)
        # Past every key under the common prefix: the first key that does not start with it.
        index = bisect.bisect_left(keys, common[:-1] + chr(ord(common[-1]) + 1), index)
    more = index < len(keys) and keys[index].startswith(prefix)
    return objects, prefixes, index if more else None


def list_body(  # noqa: PLR0917 - the fields of one answer
    bucket: str,
    prefix: str,
    delimiter: str,
    max_keys: int,
    objects: Sequence[str],
    prefixes: Sequence[str],
    token: int | None,
) -> bytes:
    def encoded(key: str) -> str:
        return escape(quote(key, safe="/"))

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>{escape(bucket)}</Name><Prefix>{encoded(prefix)}</Prefix>",
        f"<KeyCount>{len(objects) + len(prefixes)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
        f"<Delimiter>{encoded(delimiter)}</Delimiter><EncodingType>url</EncodingType>",
        f"<IsTruncated>{'true' if token is not None else 'false'}</IsTruncated>",
    ]
    if token is not None:
        parts.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
    parts.extend(
        f"<Contents><Key>{encoded(key)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
        f"<ETag>{escape(ETAG)}</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for key in objects
    )
    parts.extend(
        f"<CommonPrefixes><Prefix>{encoded(common)}</Prefix></CommonPrefixes>" for common in prefixes
    )
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bucket = ""
    keys: Sequence[str] = ()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _target(self) -> tuple[str, str, dict[str, str]]:
        url = urlsplit(self.path)
        bucket, _, key = unquote(url.path).lstrip("/").partition("/")
        query = {name: values[0] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
        return bucket, key, query

    def _object(self) -> None:
        bucket, key, query = self._target()
        if bucket != self.bucket:
            self._answer(404)
        elif not key:
            if self.command == "HEAD":
                self._answer(200)
            elif query.get("list-type") == "2":
                self._list(query)
            else:
                self._answer(501)
        else:
            at = bisect.bisect_left(self.keys, key)
            if at == len(self.keys) or self.keys[at] != key:
                self._answer(404)
            else:
                headers = {"ETag": ETAG, "Last-Modified": HTTP_DATE, "Content-Type": "binary/octet-stream"}
                self._answer(200, b"", headers)

    def _list(self, query: dict[str, str]) -> None:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        max_keys = min(int(query.get("max-keys", MAX_KEYS)), MAX_KEYS)
        start = int(query.get("continuation-token") or 0)
        objects, prefixes, token = list_page(
            self.keys,
            prefix,
            delimiter,
            start=start,
            start_after=query.get("start-after", ""),
            max_keys=max_keys,
        )
        body = list_body(self.bucket, prefix, delimiter, max_keys, objects, prefixes, token)
        self._answer(200, body, {"Content-Type": "application/xml"})

    def do_GET(self) -> None:
        self._object()

    def do_HEAD(self) -> None:
        self._object()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="the directory, ending in /")
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    Handler.bucket = args.bucket
    Handler.keys = object_keys(args.prefix, args.count)
    with ThreadingHTTPServer(("127.0.0.1", args.port), Handler) as server:
        server.daemon_threads = True
        print("ready", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

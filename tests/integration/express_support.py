"""A stand-in for two S3 Express One Zone directory buckets' zonal endpoint, on 127.0.0.1 (aiohttp):
:data:`BUCKET` and :data:`CACHE_BUCKET`, each with its own sessions.

What it emulates, and nothing more:

- ``CreateSession`` (``GET /BUCKET?session``), path-style: the request's SigV4 signature is checked for the
  signing name ``s3express`` and the region, with the account's keys; it must carry no session token. The
  answer is ``<CreateSessionResult><Credentials>`` with fresh keys, a token and an ``Expiration``
  ``session_lifetime_s`` seconds ahead (short in the tests, so the client's refresh is exercised).
- Every other request must carry ``x-amz-s3session-token`` naming a live session of its bucket (else
  ``400 ExpiredToken``, as AWS answers) and be signed (SigV4, ``s3express``, the region) with that
  session's keys; a signature made with the account's keys, for ``s3``, or without the token signed
  fails with ``403 SignatureDoesNotMatch``. :meth:`ExpressStandIn.expire_sessions` ends every session at
  once (expiry mid-mount).
- Objects in memory: ``PutObject`` (with ``x-amz-write-offset-bytes``: an append, refused with
  ``400 InvalidWriteOffset`` unless the offset is the object's size), ``GetObject`` (whole, or one
  ``Range: bytes=A-B``), ``HeadObject``, ``DeleteObject``, user metadata (``x-amz-meta-*``).
- ``HeadBucket``; ``DeleteObjects``; ``ListMultipartUploads`` (always empty).
- ``ListObjectsV2`` as directory buckets answer it: ``delimiter`` only ``/``, a ``prefix`` must end in
  ``/``, and the objects and common prefixes of each page in no particular order (shuffled, the pages too),
  paged by ``max-keys`` (at most ``page_size``) with an opaque continuation token.

Not emulated: multipart uploads, copies, checksums, other buckets (404 NoSuchBucket).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, unescape

from aiohttp import web
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

REGION = "us-west-2"
BUCKET = "data--usw2-az1--x-s3"
# A second directory bucket, for --cache-xz.
CACHE_BUCKET = "cache--usw2-az1--x-s3"
ACCESS_KEY = "AKIAEXPRESSTEST"
SECRET_KEY = "express-account-secret"


@dataclass
class _Object:
    body: bytes
    etag: str
    modified: float
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class _Session:
    bucket: str
    access_key: str
    secret: str
    expires: float


class _Verifier(S3SigV4Auth):  # type: ignore[misc]  # botocore ships no type hints
    """Recomputes a SigV4 signature from the request as received (its own timestamp and payload hash)."""

    def __init__(self, credentials: ReadOnlyCredentials, service: str, region: str, payload: str) -> None:
        super().__init__(credentials, service, region)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def _signature_ok(request: web.Request, access_key: str, secret: str, token_header: str | None) -> bool:
    authorization = request.headers.get("Authorization", "")
    fields = dict(
        part.strip().split("=", 1) for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    credential = fields.get("Credential", "").split("/")
    if len(credential) != 5 or credential[0] != access_key:
        return False
    if credential[2:] != [REGION, "s3express", "aws4_request"]:
        return False
    signed = fields.get("SignedHeaders", "").split(";")
    if token_header is not None and token_header not in signed:
        return False
    url = f"http://{request.host}{request.raw_path}"
    headers = {name: request.headers.get(name, "") for name in signed}
    signable = AWSRequest(method=request.method, url=url, headers=headers)
    signable.context["timestamp"] = request.headers.get("X-Amz-Date", "")
    verifier = _Verifier(
        ReadOnlyCredentials(access_key, secret, None),
        "s3express",
        REGION,
        headers.get("x-amz-content-sha256", ""),
    )
    canonical = verifier.canonical_request(signable)
    expected = verifier.signature(verifier.string_to_sign(signable, canonical), signable)
    return secrets.compare_digest(expected, fields.get("Signature", ""))


def _error(status: int, code: str, message: str = "") -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class ExpressStandIn:
    """One directory bucket (:data:`BUCKET`) behind a zonal endpoint; see the module docstring."""

    def __init__(self, session_lifetime_s: float = 300.0, page_size: int = 1000, seed: int = 7) -> None:
        self.session_lifetime_s = session_lifetime_s
        # Most entries per listing page, whatever max-keys asks (S3 may always answer fewer).
        self.page_size = page_size
        self.buckets: dict[str, dict[str, _Object]] = {BUCKET: {}, CACHE_BUCKET: {}}
        self.objects = self.buckets[BUCKET]
        self.sessions: dict[str, _Session] = {}
        self.sessions_created = 0
        # (method, path and query, error code or "") of every request, for the tests to read.
        self.requests: list[tuple[str, str, str]] = []
        self._random = random.Random(seed)
        self._listings: dict[str, list[tuple[str, bool]]] = {}
        self._lock = threading.Lock()
        self.endpoint_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- for the tests ----------------------------------------------------------------------------

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self.objects[key] = _Object(body, f'"{hashlib.md5(body).hexdigest()}"', time.time())

    def body(self, key: str) -> bytes | None:
        with self._lock:
            found = self.objects.get(key)
            return None if found is None else found.body

    def expire_sessions(self) -> None:
        """Every session ends now, whatever its Expiration said."""
        with self._lock:
            self.sessions.clear()

    def errors(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [r for r in self.requests if r[2]]

    @classmethod
    @contextmanager
    def start(cls, session_lifetime_s: float = 300.0, page_size: int = 1000) -> Iterator[ExpressStandIn]:
        server = cls(session_lifetime_s, page_size)
        started = threading.Event()
        stop: list[asyncio.Event] = []

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", server._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            server.endpoint_url = f"http://127.0.0.1:{port}"
            stop.append(asyncio.Event())
            started.set()
            await stop[0].wait()
            await runner.cleanup()

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        if not started.wait(30):
            raise RuntimeError("the S3 Express stand-in did not start")
        try:
            yield server
        finally:
            loop.call_soon_threadsafe(stop[0].set)
            thread.join(30)
            loop.close()

    # ---- requests -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            response = self._answer(request, body)
            code = ""
            if response.status >= 300 and isinstance(response.body, bytes):
                code = response.body.split(b"<Code>")[1].split(b"</Code>")[0].decode()
            self.requests.append((request.method, request.raw_path, code))
        return response

    def _answer(self, request: web.Request, body: bytes) -> web.Response:
        bucket, _, key = request.raw_path.split("?")[0].lstrip("/").partition("/")
        if bucket not in self.buckets:
            return _error(404, "NoSuchBucket", bucket)
        objects = self.buckets[bucket]
        key = unquote(key)
        if "session" in request.query:
            return self._create_session(request, bucket)
        token = request.headers.get("x-amz-s3session-token")
        session = self.sessions.get(token or "")
        if session is None or session.expires <= time.time() or session.bucket != bucket:
            return _error(400, "ExpiredToken", "the session token is missing or expired")
        if "X-Amz-Security-Token" in request.headers:
            return _error(400, "InvalidRequest", "X-Amz-Security-Token on a zonal endpoint")
        if not _signature_ok(request, session.access_key, session.secret, "x-amz-s3session-token"):
            return _error(403, "SignatureDoesNotMatch", "not signed with the session's keys for s3express")
        if request.method == "GET" and not key and request.query.get("list-type") == "2":
            return self._list(request, objects)
        if request.method == "HEAD" and not key:
            return web.Response(status=200)  # HeadBucket
        if request.method == "GET" and not key and "uploads" in request.query:
            # ListMultipartUploads: multipart uploads are not emulated, so there is never one in progress.
            xml = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"
            return web.Response(body=xml.encode(), content_type="application/xml")
        if request.method == "POST" and not key and "delete" in request.query:
            return self._delete_objects(body, objects)
        if request.method == "PUT" and key:
            return self._put(request, objects, key, body)
        if request.method in ("GET", "HEAD") and key:
            return self._get(request, objects, key)
        if request.method == "DELETE" and key:
            objects.pop(key, None)
            return web.Response(status=204)
        return _error(501, "NotImplemented", f"{request.method} {request.raw_path}")

    def _delete_objects(self, body: bytes, objects: dict[str, _Object]) -> web.Response:
        keys = [unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", body.decode())]
        for key in keys:
            objects.pop(key, None)
        deleted = "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        return web.Response(
            body=f"<DeleteResult>{deleted}</DeleteResult>".encode(), content_type="application/xml"
        )

    def _create_session(self, request: web.Request, bucket: str) -> web.Response:
        if request.method != "GET":
            return _error(405, "MethodNotAllowed")
        if "x-amz-s3session-token" in request.headers:
            return _error(400, "InvalidRequest", "CreateSession with a session token")
        if not _signature_ok(request, ACCESS_KEY, SECRET_KEY, None):
            return _error(403, "SignatureDoesNotMatch", "CreateSession not signed for s3express")
        self.sessions_created += 1
        session = _Session(bucket, f"ASIASESSION{self.sessions_created}", secrets.token_hex(16), time.time())
        session.expires += self.session_lifetime_s
        token = secrets.token_urlsafe(24)
        self.sessions[token] = session
        xml = (
            '<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Credentials>'
            f"<SessionToken>{token}</SessionToken><SecretAccessKey>{session.secret}</SecretAccessKey>"
            f"<AccessKeyId>{session.access_key}</AccessKeyId><Expiration>{_iso(session.expires)}</Expiration>"
            "</Credentials></CreateSessionResult>"
        )
        return web.Response(body=xml.encode(), content_type="application/xml")

    def _put(self, request: web.Request, objects: dict[str, _Object], key: str, body: bytes) -> web.Response:
        offset = request.headers.get("x-amz-write-offset-bytes")
        existing = objects.get(key)
        metadata = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-amz-meta-")}
        if offset is not None:
            size = len(existing.body) if existing is not None else 0
            if int(offset) != size or (existing is None and size):
                return _error(400, "InvalidWriteOffset", f"offset {offset}, object size {size}")
            if existing is not None:
                body, metadata = existing.body + body, existing.metadata
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        objects[key] = _Object(body, etag, time.time(), metadata)
        return web.Response(headers={"ETag": etag})

    def _get(self, request: web.Request, objects: dict[str, _Object], key: str) -> web.Response:
        found = objects.get(key)
        if found is None:
            return _error(404, "NoSuchKey", key) if request.method == "GET" else web.Response(status=404)
        headers = {
            "ETag": found.etag,
            "Last-Modified": formatdate(found.modified, usegmt=True),
            **found.metadata,
        }
        data, status = found.body, 200
        ranged = request.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first_text, _, last_text = ranged.removeprefix("bytes=").partition("-")
            first = int(first_text)
            if first >= len(data):
                return _error(416, "InvalidRange")
            last = min(int(last_text), len(data) - 1) if last_text else len(data) - 1
            data, status = data[first : last + 1], 206
            headers["Content-Range"] = f"bytes {first}-{last}/{len(found.body)}"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(found.body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=status, body=data, headers=headers)

    def _list(self, request: web.Request, objects: dict[str, _Object]) -> web.Response:
        query = request.query
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        if delimiter not in ("", "/"):
            return _error(400, "InvalidArgument", "directory buckets take only '/' as delimiter")
        if prefix and not prefix.endswith("/"):
            return _error(400, "InvalidArgument", "directory buckets list only prefixes ending in '/'")
        max_keys = min(int(query.get("max-keys", "1000")), self.page_size)
        token = query.get("continuation-token")
        if token is None:
            entries: dict[str, bool] = {}
            for key in objects:
                if not key.startswith(prefix):
                    continue
                below = key[len(prefix) :]
                if delimiter and "/" in below:
                    entries[prefix + below.split("/", 1)[0] + "/"] = True
                else:
                    entries[key] = False
            items = list(entries.items())
            self._random.shuffle(items)
            token = secrets.token_hex(8)
            self._listings[token] = items
        items = self._listings.pop(token, [])
        page, later = items[:max_keys], items[max_keys:]
        next_token = ""
        if later:
            next_token = secrets.token_hex(8)
            self._listings[next_token] = later
        parts = ['<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
        parts.append("<EncodingType>url</EncodingType>")
        for name, is_prefix in page:
            if is_prefix:
                parts.append(f"<CommonPrefixes><Prefix>{quote(name)}</Prefix></CommonPrefixes>")
            else:
                found = objects[name]
                parts.append(
                    f"<Contents><Key>{quote(name)}</Key><Size>{len(found.body)}</Size>"
                    f"<ETag>{escape(found.etag)}</ETag><LastModified>{_iso(found.modified)}</LastModified>"
                    "</Contents>"
                )
        parts.append(f"<IsTruncated>{'true' if later else 'false'}</IsTruncated>")
        if next_token:
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        parts.append("</ListBucketResult>")
        return web.Response(body="".join(parts).encode(), content_type="application/xml")

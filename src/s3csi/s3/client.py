"""The async S3 client every part of s3csi uses: aiohttp with a keep-alive pool, botocore's SigV4.

One method per S3 call, each with a timeout, retries for transient failures only (``retry.py``) and
errors translated once (``errors.py``). The hot path, :meth:`S3Client.get_object`, goes through
``http1.py`` instead of aiohttp: its body is received from the socket straight into the buffer it
returns, with no copy in user space (see docs/performance.md, "S3 client choice").
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import yarl
from multidict import CIMultiDictProxy

from s3csi import __version__
from s3csi.errors import InvalidArgument, S3csiError
from s3csi.mountflags import KMS_SSE_TYPES, SSE_TYPES, STORAGE_CLASS_PATTERN
from s3csi.s3 import http1, wire
from s3csi.s3.addressing import copy_source
from s3csi.s3.checksums import CRC32C_ALGORITHM, CRC32C_HEADER, crc32c_header
from s3csi.s3.credentials import CredentialProvider, Credentials, default_credential_provider
from s3csi.s3.endpoints import SIGV4_S3EXPRESS, BucketType, EndpointInputs, ResolvedEndpoint, resolve
from s3csi.s3.errors import (
    CONNECTION_ERROR,
    CONNECTION_LOST,
    TIMEOUT,
    S3Error,
    code_for_status,
    credentials_error,
    exhausted,
    make_error,
)
from s3csi.s3.express import ExpressSessions, MalformedSession, parse_create_session, refused_session
from s3csi.s3.observer import RequestObserver
from s3csi.s3.region import Redirect, detected_region, on_redirect
from s3csi.s3.retry import Idempotency, backoff_delay, is_transient, should_retry
from s3csi.s3.settings import DEFAULT_REGION, S3Settings
from s3csi.s3.signing import payload_hash, sign
from s3csi.s3.wire import ListPage, MultipartUpload, MultipartUploadPage, ObjectInfo

__all__ = ["ListPage", "MultipartUpload", "MultipartUploadPage", "ObjectInfo", "S3Client", "WriteOptions"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DELETE_BATCH = 1000
META_HEADER_PREFIX = "x-amz-meta-"
# Above this, CopyObject is refused by S3 and the copy is done part by part (UploadPartCopy).
MAX_SINGLE_COPY_BYTES = 5 * 1024**3
COPY_PART_BYTES = 512 * 1024**2
MAX_PARTS = 10_000
COPY_PART_CONCURRENCY = 8


@dataclass(frozen=True)
class WriteOptions:
    """How new objects are stored (mount-s3's ``--storage-class``, ``--sse``, ``--sse-kms-key-id``)."""

    storage_class: str | None = None
    # One of mountflags.SSE_TYPES; None leaves the bucket's default encryption.
    sse: str | None = None
    sse_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.sse is not None and self.sse not in SSE_TYPES:
            raise InvalidArgument(f"--sse must be one of {', '.join(SSE_TYPES)}, not {self.sse!r}")
        if self.sse_kms_key_id is not None and self.sse not in KMS_SSE_TYPES:
            raise InvalidArgument("--sse-kms-key-id needs --sse aws:kms or aws:kms:dsse")
        if self.storage_class is not None and not STORAGE_CLASS_PATTERN.fullmatch(self.storage_class):
            raise InvalidArgument(f"--storage-class is not a storage class name: {self.storage_class!r}")

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.storage_class:
            headers["x-amz-storage-class"] = self.storage_class
        if self.sse:
            headers["x-amz-server-side-encryption"] = self.sse
        if self.sse_kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self.sse_kms_key_id
        return headers


@dataclass(frozen=True)
class _Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes | bytearray
    # time.perf_counter() when the response head arrived.
    head_at: float = 0.0


class S3Client:
    """Use as ``async with S3Client(settings) as s3:``, or call :meth:`close`.

    ``credentials`` None means the standard AWS chain over this process's environment, unless the
    settings say ``no_sign_request``. The constructor does no I/O: the connection pool is made on
    the first call, inside the running event loop.
    """

    def __init__(
        self,
        settings: S3Settings,
        credentials: CredentialProvider | None = None,
        *,
        observer: RequestObserver | None = None,
    ) -> None:
        self.settings = settings
        # Told of every request sent (s3/observer.py): the mounter's metrics, which --log-metrics reads too.
        self.observer = observer
        self._endpoint_inputs = EndpointInputs(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            force_path_style=settings.force_path_style,
            use_fips=settings.use_fips,
            dual_stack=settings.dual_stack,
            accelerate=settings.accelerate,
            bucket_type=BucketType(settings.bucket_type) if settings.bucket_type else None,
        )
        # Each bucket's endpoint, resolved by the S3 endpoint rules on its first request (s3/endpoints.py).
        self._endpoints: dict[str, ResolvedEndpoint] = {}
        # Buckets whose region S3 named when the settings gave none (s3/region.py), switched once each.
        self._detected_regions: dict[str, str] = {}
        # Headers every request carries (--requester-pays, --expected-bucket-owner).
        self._common_headers: dict[str, str] = {}
        if settings.requester_pays:
            self._common_headers["x-amz-request-payer"] = "requester"
        if settings.expected_bucket_owner is not None:
            self._common_headers["x-amz-expected-bucket-owner"] = settings.expected_bucket_owner
        # --upload-checksums crc32c: the parts' checksums of each upload created with them, by upload id.
        self._part_checksums: dict[str, dict[int, str]] = {}
        self._credentials: CredentialProvider | None = None
        if not settings.no_sign_request:
            self._credentials = credentials or default_credential_provider(os.environ)
        agent = f"s3csi/{__version__} aiohttp/{aiohttp.__version__}"
        self._user_agent = f"{settings.user_agent_prefix} {agent}" if settings.user_agent_prefix else agent
        self._session: aiohttp.ClientSession | None = None
        # GetObject's connections, one pool per (scheme, host): virtual-hosted buckets are hosts.
        self._pools: dict[tuple[str, str], http1.ConnectionPool] = {}
        # Directory buckets' sessions (s3csi.s3.express).
        self.express_sessions = ExpressSessions(self._create_session)

    async def __aenter__(self) -> S3Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ---- objects ---------------------------------------------------------------------------------

    async def list_objects_v2(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "/",
        continuation_token: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """One page. ``delimiter=""`` lists every key under ``prefix`` (no common prefixes)."""
        params: dict[str, str | None] = {"list-type": "2", "encoding-type": "url", "max-keys": str(max_keys)}
        if prefix:
            params["prefix"] = prefix
        if delimiter:
            params["delimiter"] = delimiter
        if continuation_token is not None:
            params["continuation-token"] = continuation_token
        if start_after is not None:
            params["start-after"] = start_after
        response = await self._call("ListObjectsV2", "GET", bucket, params=params)
        return self._parsed("ListObjectsV2", bucket, None, wire.parse_list_objects_v2, response.body)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        response = await self._call("HeadObject", "HEAD", bucket, key)
        try:
            return ObjectInfo(
                key=key,
                size=int(response.headers["Content-Length"]),
                etag=response.headers.get("ETag", ""),
                last_modified=wire.parse_http_date(response.headers["Last-Modified"]),
                metadata=user_metadata(response.headers),
                content_type=response.headers.get("Content-Type"),
            )
        except (KeyError, ValueError) as exc:
            raise self._malformed("HeadObject", bucket, key, f"missing or bad header {exc}") from exc

    async def get_object(
        self, bucket: str, key: str, *, start: int = 0, end: int | None = None
    ) -> bytes | bytearray:
        """Bytes ``[start, end)`` of the object (``end`` None: to its end), clipped to its size as S3
        clips ranges: a range starting at or past the end gives ``b""``. The bytes are the buffer
        they were received into (a ``bytearray`` nobody else holds), not a copy."""
        if start < 0 or (end is not None and end < start):
            raise InvalidArgument(f"bad byte range [{start}, {end}) for s3://{bucket}/{key}")
        if end == start:
            return b""
        ranged = start > 0 or end is not None
        headers = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if ranged else {}
        response = await self._call(
            "GetObject", "GET", bucket, key, headers=headers, ok=(200, 206, 416), into_buffer=True
        )
        if response.status == 416:
            return b""
        if ranged and response.status == 200:
            # A server that ignores Range sends the whole object.
            return response.body[start:end]
        return response.body

    async def get_whole_object(self, bucket: str, key: str) -> tuple[bytes | bytearray, ObjectInfo]:
        """The whole object and what a HeadObject would say of it (its user metadata included), from one
        GetObject: for a small object, the read and its attributes for the price of one request."""
        response = await self._call("GetObject", "GET", bucket, key, into_buffer=True)
        try:
            info = ObjectInfo(
                key=key,
                size=len(response.body),
                etag=response.headers.get("ETag", ""),
                last_modified=wire.parse_http_date(response.headers["Last-Modified"]),
                metadata=user_metadata(response.headers),
                content_type=response.headers.get("Content-Type"),
            )
        except (KeyError, ValueError) as exc:
            raise self._malformed("GetObject", bucket, key, f"missing or bad header {exc}") from exc
        return response.body, info

    async def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes | memoryview,
        options: WriteOptions = WriteOptions(),
        metadata: Mapping[str, str] | None = None,
        *,
        write_offset: int | None = None,
    ) -> str:
        """Store the whole object, with ``metadata`` as its user metadata; returns its ETag.

        ``write_offset``: append ``body`` to the existing object, whose size must be exactly that
        (``x-amz-write-offset-bytes``; directory buckets only, which refuse a wrong offset)."""
        headers = {**options.headers(), **metadata_headers(metadata), **await self._checksum_headers(body)}
        if write_offset is not None:
            headers["x-amz-write-offset-bytes"] = str(write_offset)
        response = await self._call(
            "PutObject",
            "PUT",
            bucket,
            key,
            headers=headers,
            body=body,
            data_body=True,
            # An append whose answer was lost may have happened: retried, it could be appended twice.
            idempotency=Idempotency.IDEMPOTENT if write_offset is None else Idempotency.NOT_IDEMPOTENT,
        )
        return self._etag("PutObject", bucket, key, response)

    async def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        options: WriteOptions = WriteOptions(),
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        *,
        checksums: bool = True,
    ) -> str:
        """``checksums``: the parts will carry the checksums ``--upload-checksums`` asks for (False for
        UploadPartCopy parts, which S3 computes)."""
        checksums = checksums and self.settings.upload_checksums == "crc32c"
        headers = {**options.headers(), **metadata_headers(metadata)}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if checksums:
            headers["x-amz-checksum-algorithm"] = CRC32C_ALGORITHM
        response = await self._call(
            "CreateMultipartUpload",
            "POST",
            bucket,
            key,
            params={"uploads": None},
            headers=headers,
            idempotency=Idempotency.NOT_IDEMPOTENT,
        )
        upload_id = self._parsed("CreateMultipartUpload", bucket, key, wire.parse_upload_id, response.body)
        if checksums:
            self._part_checksums[upload_id] = {}
        return upload_id

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: bytes | memoryview
    ) -> str:
        """Upload part ``part_number`` (1…10000); returns its ETag for completion."""
        checksums = self._part_checksums.get(upload_id)
        headers = await self._checksum_headers(body) if checksums is not None else {}
        response = await self._call(
            "UploadPart",
            "PUT",
            bucket,
            key,
            params={"partNumber": str(part_number), "uploadId": upload_id},
            headers=headers,
            body=body,
            data_body=True,
        )
        if checksums is not None:
            checksums[part_number] = headers[CRC32C_HEADER]
        return self._etag("UploadPart", bucket, key, response)

    async def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> str:
        """``parts`` are (part number, ETag) pairs; returns the object's ETag."""
        response = await self._call(
            "CompleteMultipartUpload",
            "POST",
            bucket,
            key,
            params={"uploadId": upload_id},
            body=wire.complete_multipart_body(parts, self._part_checksums.get(upload_id)),
            error_in_200=True,
        )
        self._part_checksums.pop(upload_id, None)
        return self._parsed("CompleteMultipartUpload", bucket, key, wire.parse_etag_result, response.body)

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._part_checksums.pop(upload_id, None)
        await self._call(
            "AbortMultipartUpload", "DELETE", bucket, key, params={"uploadId": upload_id}, ok=(204, 200)
        )

    async def list_multipart_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> MultipartUploadPage:
        """One page of the uploads in progress under ``prefix``, in key order, then upload id order."""
        params: dict[str, str | None] = {
            "uploads": None,
            "encoding-type": "url",
            "max-uploads": str(max_uploads),
        }
        if prefix:
            params["prefix"] = prefix
        if key_marker is not None:
            params["key-marker"] = key_marker
        if upload_id_marker is not None:
            params["upload-id-marker"] = upload_id_marker
        response = await self._call("ListMultipartUploads", "GET", bucket, params=params)
        return self._parsed(
            "ListMultipartUploads", bucket, None, wire.parse_list_multipart_uploads, response.body
        )

    async def copy_object(
        self,
        bucket: str,
        source_key: str,
        dest_key: str,
        options: WriteOptions = WriteOptions(),
        *,
        size: int | None = None,
    ) -> str:
        """Server-side copy within the bucket; part by part (UploadPartCopy) above 5 GiB. ``size``: the
        source's, when the caller knows it (else a HeadObject asks). Returns the copy's ETag."""
        if size is None:
            size = (await self.head_object(bucket, source_key)).size
        if size > MAX_SINGLE_COPY_BYTES:
            await self._copy_multipart(
                bucket, source_key, dest_key, size=size, options=options, part_size=COPY_PART_BYTES
            )
            return (await self.head_object(bucket, dest_key)).etag
        headers = {"x-amz-copy-source": self._copy_source(bucket, source_key), **options.headers()}
        response = await self._call("CopyObject", "PUT", bucket, dest_key, headers=headers, error_in_200=True)
        return self._parsed("CopyObject", bucket, dest_key, wire.parse_etag_result, response.body)

    async def replace_metadata(
        self,
        bucket: str,
        info: ObjectInfo,
        metadata: Mapping[str, str],
        options: WriteOptions = WriteOptions(),
        *,
        dest_key: str | None = None,
    ) -> str:
        """Replace the user metadata of the object ``info`` (from HeadObject) by copying it onto itself
        (one CopyObject; part by part above 5 GiB), keeping its content type. The copy is made only from
        the version ``info`` describes (``x-amz-copy-source-if-match``): an object replaced meanwhile
        fails with S3's PreconditionFailed rather than losing the new bytes. Returns the new ETag.
        ``dest_key``: copy to that key instead (a rename that carries new metadata)."""
        dest = info.key if dest_key is None else dest_key
        if info.size > MAX_SINGLE_COPY_BYTES:
            await self._copy_multipart(
                bucket,
                info.key,
                dest,
                size=info.size,
                options=options,
                part_size=COPY_PART_BYTES,
                metadata=metadata,
                content_type=info.content_type,
                if_match=info.etag,
            )
            return (await self.head_object(bucket, dest)).etag
        headers = {
            "x-amz-copy-source": self._copy_source(bucket, info.key),
            "x-amz-copy-source-if-match": info.etag,
            "x-amz-metadata-directive": "REPLACE",
            **options.headers(),
            **metadata_headers(metadata),
        }
        if info.content_type is not None:
            headers["Content-Type"] = info.content_type
        response = await self._call("CopyObject", "PUT", bucket, dest, headers=headers, error_in_200=True)
        return self._parsed("CopyObject", bucket, dest, wire.parse_etag_result, response.body)

    async def _copy_multipart(
        self,
        bucket: str,
        source_key: str,
        dest_key: str,
        *,
        size: int,
        options: WriteOptions,
        part_size: int,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_match: str | None = None,
    ) -> None:
        upload_id = await self.create_multipart_upload(
            bucket, dest_key, options, metadata, content_type, checksums=False
        )
        ranges = copy_part_ranges(size, part_size)
        limit = asyncio.Semaphore(COPY_PART_CONCURRENCY)

        async def copy_part(number: int, first: int, last: int) -> tuple[int, str]:
            headers = {
                "x-amz-copy-source": self._copy_source(bucket, source_key),
                "x-amz-copy-source-range": f"bytes={first}-{last}",
            }
            if if_match is not None:
                headers["x-amz-copy-source-if-match"] = if_match
            async with limit:
                response = await self._call(
                    "UploadPartCopy",
                    "PUT",
                    bucket,
                    dest_key,
                    params={"partNumber": str(number), "uploadId": upload_id},
                    headers=headers,
                    error_in_200=True,
                )
            return number, self._parsed(
                "UploadPartCopy", bucket, dest_key, wire.parse_etag_result, response.body
            )

        try:
            parts = await asyncio.gather(*(copy_part(n, a, b) for n, (a, b) in enumerate(ranges, start=1)))
            await self.complete_multipart_upload(bucket, dest_key, upload_id, parts)
        except BaseException:
            await asyncio.shield(self._abort_quietly(bucket, dest_key, upload_id))
            raise

    async def _abort_quietly(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            await self.abort_multipart_upload(bucket, key, upload_id)
        except S3Error:
            log.warning("could not abort multipart upload of s3://%s/%s", bucket, key, exc_info=True)

    async def delete_object(self, bucket: str, key: str) -> None:
        """Succeeds for a key that does not exist, as S3 does."""
        await self._call("DeleteObject", "DELETE", bucket, key, ok=(204, 200))

    async def delete_batch(self, bucket: str, keys: Sequence[str]) -> list[wire.DeleteFailure]:
        """One DeleteObjects of at most :data:`MAX_DELETE_BATCH` keys; the keys S3 did not delete, and
        why (an empty list when it deleted them all; keys that do not exist count as deleted)."""
        if len(keys) > MAX_DELETE_BATCH:
            raise InvalidArgument(f"DeleteObjects takes at most {MAX_DELETE_BATCH} keys, not {len(keys)}")
        body = wire.delete_objects_body(keys)
        headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
        response = await self._call(
            "DeleteObjects", "POST", bucket, params={"delete": None}, headers=headers, body=body
        )
        return self._parsed("DeleteObjects", bucket, None, wire.parse_delete_failures, response.body)

    async def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete in batches of 1000, every batch even after a failure; then raise naming the first
        key that could not be deleted."""
        failures: list[wire.DeleteFailure] = []
        for first in range(0, len(keys), MAX_DELETE_BATCH):
            failures += await self.delete_batch(bucket, keys[first : first + MAX_DELETE_BATCH])
        if failures:
            first_failure = failures[0]
            raise make_error(
                "DeleteObjects",
                code=first_failure.code,
                message=f"{first_failure.message} ({len(failures)} of {len(keys)} keys not deleted)",
                status=None,
                bucket=bucket,
                key=first_failure.key,
            )

    # ---- buckets ---------------------------------------------------------------------------------

    async def create_bucket(self, bucket: str) -> None:
        """Create in the settings' region; a bucket that is already ours counts as created."""
        region = self.settings.region
        body = wire.create_bucket_body(region) if region != DEFAULT_REGION else b""
        try:
            await self._call("CreateBucket", "PUT", bucket, body=body)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":
                raise

    async def delete_bucket(self, bucket: str) -> None:
        await self._call("DeleteBucket", "DELETE", bucket, ok=(204, 200))

    async def head_bucket(self, bucket: str) -> None:
        """Succeeds when the bucket exists and these credentials may use it."""
        await self._call("HeadBucket", "HEAD", bucket)

    # ---- endpoints, headers --------------------------------------------------------------------------

    def endpoint(self, bucket: str) -> ResolvedEndpoint:
        """Where ``bucket``'s requests go and how they are signed, resolved once per bucket by the S3
        endpoint rules; InvalidArgument when the bucket cannot be addressed with these settings."""
        found = self._endpoints.get(bucket)
        if found is None:
            found = self._endpoints[bucket] = resolve(bucket, self._endpoint_inputs)
        return found

    def _follow_redirect(
        self, operation: str, bucket: str, sent: ResolvedEndpoint, error: S3Error, *, redirected: bool
    ) -> ResolvedEndpoint | None:
        """The endpoint to send a request again to after ``error`` said the bucket is in another region,
        switching the bucket to that region when this is the first such answer; None: ``error`` stands.
        No await between the decision and the switch: concurrent first requests switch once."""
        region = detected_region(error.status, error.code, error.bucket_region)
        follow = on_redirect(
            region,
            operation=operation,
            detect=self.settings.detect_region,
            sent_region=sent.signing_region,
            switched=bucket in self._detected_regions,
            endpoint_changed=self._endpoints.get(bucket) is not sent,
            redirected=redirected,
        )
        if follow is Redirect.RETRY:
            return self.endpoint(bucket)
        if follow is not Redirect.SWITCH or region is None:
            return None
        try:
            switched = resolve(bucket, dataclasses.replace(self._endpoint_inputs, region=region))
        except InvalidArgument:
            return None  # the rules cannot address the bucket there: S3's answer, naming it, stands
        self._endpoints[bucket] = switched
        self._detected_regions[bucket] = region
        log.info(
            "bucket %s is in region %s (detected from S3's answer; set --region %s to skip the detection)",
            bucket,
            region,
            region,
        )
        return switched

    def _copy_source(self, bucket: str, key: str) -> str:
        """``x-amz-copy-source``: ``bucket/key``, or ``ARN/object/key`` for an access point ARN."""
        if bucket.startswith("arn:"):
            return copy_source(bucket, "object/" + key)
        return copy_source(bucket, key)

    async def _checksum_headers(self, body: bytes | memoryview) -> dict[str, str]:
        """The checksum header of uploaded data (``--upload-checksums``), computed off the event loop."""
        if self.settings.upload_checksums != "crc32c":
            return {}
        value = await asyncio.to_thread(crc32c_header, body) if len(body) > 64 * 1024 else crc32c_header(body)
        return {CRC32C_HEADER: value, "x-amz-sdk-checksum-algorithm": CRC32C_ALGORITHM}

    # ---- directory buckets ---------------------------------------------------------------------------

    async def _create_session(self, bucket: str) -> Credentials:
        """A directory bucket's session (CreateSession), signed with this client's own credentials."""
        response = await self._call("CreateSession", "GET", bucket, params={"session": None})
        try:
            return parse_create_session(response.body)
        except MalformedSession as exc:
            raise self._malformed("CreateSession", bucket, None, str(exc)) from exc

    async def _signed(
        self,
        operation: str,
        method: str,
        url: str,
        endpoint: ResolvedEndpoint,
        *,
        bucket: str,
        headers: Mapping[str, str],
        sha256: str,
    ) -> Mapping[str, str]:
        """``headers`` signed as the endpoint rules say: with this client's credentials, or, for a
        directory bucket (``sigv4-s3express``), with the bucket's session (s3csi.s3.express)."""
        if self._credentials is None:
            return headers
        session = endpoint.auth_scheme == SIGV4_S3EXPRESS and operation != "CreateSession"
        credentials = await (self.express_sessions.get(bucket) if session else self._credentials.get())
        return sign(
            method,
            url,
            headers,
            content_sha256=sha256,
            credentials=credentials,
            region=endpoint.signing_region,
            service=endpoint.signing_name,
            s3_session=session,
        )

    # ---- one request, with retries -----------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str | None = None,
        *,
        params: Mapping[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | memoryview = b"",
        data_body: bool = False,
        ok: tuple[int, ...] = (200,),
        error_in_200: bool = False,
        idempotency: Idempotency = Idempotency.IDEMPOTENT,
        into_buffer: bool = False,
    ) -> _Response:
        """Send one S3 request, retrying transient failures. ``data_body`` marks object data, whose
        hash is signed only when the settings ask for it; ``error_in_200`` marks calls that S3 may
        answer with 200 and an error body (CompleteMultipartUpload, CopyObject); ``into_buffer``
        marks a GET of object data, sent through ``http1.py``."""
        endpoint = self.endpoint(bucket)
        url = endpoint.url(key, params)
        if self._common_headers:
            headers = {**self._common_headers, **(headers or {})}
            # A copy reads the bucket too: the source's owner is checked as well.
            if "x-amz-copy-source" in headers and self.settings.expected_bucket_owner is not None:
                headers["x-amz-source-expected-bucket-owner"] = self.settings.expected_bucket_owner
        content_sha256 = payload_hash(body, sign=self.settings.sign_payload or not data_body)
        attempt = 0
        new_session = operation != "CreateSession" and endpoint.auth_scheme == SIGV4_S3EXPRESS
        redirected = False
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self._send(
                    operation,
                    endpoint,
                    method=method,
                    url=url,
                    bucket=bucket,
                    key=key,
                    headers=headers or {},
                    body=body,
                    content_sha256=content_sha256,
                    ok=ok,
                    error_in_200=error_in_200,
                    into_buffer=into_buffer,
                )
            except S3Error as error:
                if self.observer is not None:
                    self.observer.failed(operation, error, time.perf_counter() - started)
                if new_session and refused_session(method, error.code, error.status):
                    # A directory bucket refused its session before its time: once more with a new one.
                    new_session = False
                    self.express_sessions.forget(bucket)
                    continue
                followed = self._follow_redirect(operation, bucket, endpoint, error, redirected=redirected)
                if followed is not None:
                    # The bucket is in another region (s3/region.py): once more, signed for that one.
                    endpoint, url, redirected, attempt = followed, followed.url(key, params), True, 0
                    continue
                if should_retry(error, idempotency, attempt, self.settings.max_attempts):
                    delay = backoff_delay(
                        attempt, self.settings.retry_base_delay_s, self.settings.retry_max_delay_s
                    )
                    log.debug("%s: %s; retry %d in %.2f s", operation, error.code, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                if is_transient(error):
                    raise exhausted(error, attempt) from error
                raise
            if self.observer is not None:
                ended = time.perf_counter()
                self.observer.succeeded(
                    operation, response.head_at - started, ended - started, len(body), len(response.body)
                )
            return response

    async def _send(
        self,
        operation: str,
        endpoint: ResolvedEndpoint,
        *,
        method: str,
        url: str,
        bucket: str,
        key: str | None,
        headers: Mapping[str, str],
        body: bytes | memoryview,
        content_sha256: str,
        ok: tuple[int, ...],
        error_in_200: bool,
        into_buffer: bool,
    ) -> _Response:
        try:
            headers = await self._signed(
                operation, method, url, endpoint, bucket=bucket, headers=headers, sha256=content_sha256
            )
        except S3Error:
            raise  # a directory bucket's CreateSession failed: its own error, already translated
        except S3csiError as exc:
            # A file that cannot be read, no keys, STS down: this request's failure, like any other.
            raise credentials_error(operation, exc, bucket=bucket, key=key) from exc
        data: bytes | bytearray
        try:
            if into_buffer:
                async with asyncio.timeout(self.settings.request_timeout_s):
                    received = await self._get_into_buffer(url, headers)
                status, response_headers, data = received.status, received.headers, received.body
                head_at = received.head_at
            else:
                session = self._session or self._open_session()
                async with session.request(
                    method, yarl.URL(url, encoded=True), headers=headers, data=body if body else None
                ) as response:
                    head_at = time.perf_counter()
                    data = await response.read()
                    status, response_headers = response.status, response.headers
        except (http1.HttpError, aiohttp.ClientError, TimeoutError) as exc:
            code, message = _below_http(exc, self.settings.request_timeout_s)
            raise make_error(
                operation, code=code, message=message, status=None, bucket=bucket, key=key
            ) from exc
        if status in ok:
            error = wire.parse_error(data) if error_in_200 else None
            if error is None:
                return _Response(status, response_headers, data, head_at)
        else:
            error = wire.parse_error(data)
        raise make_error(
            operation,
            code=error.code if error and error.code else code_for_status(status),
            message=error.message if error else "",
            status=status,
            bucket=bucket,
            key=key,
            region_hint=(error.region if error else None) or response_headers.get("x-amz-bucket-region"),
        )

    async def _get_into_buffer(self, url: str, headers: Mapping[str, str]) -> http1.Response:
        parts = urlsplit(url)
        pool = self._pools.get((parts.scheme, parts.netloc))
        if pool is None:
            pool = http1.ConnectionPool(
                parts.scheme,
                parts.hostname or "",
                parts.port,
                ssl_context=self._ssl_context() if parts.scheme == "https" else None,
                connect_timeout_s=self.settings.connect_timeout_s,
                limit=self.settings.max_connections,
            )
            self._pools[parts.scheme, parts.netloc] = pool
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        return await pool.get(target, {"User-Agent": self._user_agent, **headers})

    def _ssl_context(self) -> ssl.SSLContext:
        """The system's CAs, or only those of the settings' CA bundle."""
        ca_bundle = self.settings.ca_bundle
        try:
            return ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise InvalidArgument(f"cannot load the CA bundle {ca_bundle} ({reason})") from exc

    def _open_session(self) -> aiohttp.ClientSession:
        settings = self.settings
        ssl_context: ssl.SSLContext | bool = True
        if settings.ca_bundle and not (settings.endpoint_url or "https:").startswith("http:"):
            ssl_context = self._ssl_context()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.max_connections, ssl=ssl_context),
            timeout=aiohttp.ClientTimeout(
                total=settings.request_timeout_s, sock_connect=settings.connect_timeout_s
            ),
            headers={"User-Agent": self._user_agent},
            # Bodies are object bytes: never let the HTTP layer decode a Content-Encoding.
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )
        return self._session

    # ---- response helpers ------------------------------------------------------------------------------

    def _etag(self, operation: str, bucket: str, key: str, response: _Response) -> str:
        etag = response.headers.get("ETag")
        if not etag:
            raise self._malformed(operation, bucket, key, "no ETag header")
        return etag

    def _parsed(
        self,
        operation: str,
        bucket: str,
        key: str | None,
        parse: Callable[[bytes | bytearray], T],
        body: bytes | bytearray,
    ) -> T:
        try:
            return parse(body)
        except (wire.MalformedResponse, ValueError) as exc:
            raise self._malformed(operation, bucket, key, str(exc)) from exc

    @staticmethod
    def _malformed(operation: str, bucket: str, key: str | None, why: str) -> S3Error:
        return make_error(
            operation, code="MalformedResponse", message=why, status=None, bucket=bucket, key=key
        )


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-meta-*`` headers of a response, keys without the prefix, in lower case."""
    return {
        name.lower()[len(META_HEADER_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(META_HEADER_PREFIX)
    }


def metadata_headers(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata as request headers (``x-amz-meta-`` + key)."""
    return {META_HEADER_PREFIX + name: value for name, value in (metadata or {}).items()}


def copy_part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges for UploadPartCopy: ``part_size`` each, grown when the object would
    need more than 10000 parts."""
    part_size = max(part_size, -(-size // MAX_PARTS))
    return [(first, min(first + part_size, size) - 1) for first in range(0, size, part_size)]


def _below_http(exc: BaseException, timeout_s: float) -> tuple[str, str]:
    """The error code and message for a failure below HTTP, from either transport. The messages are
    the transports' texts, which name the host and the OS or TLS error but carry no header."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, (http1.TLSFailed, aiohttp.ClientSSLError)):
        return "TLSError", reason
    if isinstance(exc, (http1.ConnectFailed, aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return CONNECTION_ERROR, reason
    if isinstance(exc, TimeoutError):
        return TIMEOUT, f"no complete answer within {timeout_s:g} s"
    return CONNECTION_LOST, reason

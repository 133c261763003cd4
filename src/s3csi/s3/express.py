"""Directory buckets (S3 Express One Zone): their names, zonal endpoints and session credentials.

A directory bucket is named ``BASE--ZONEID--x-s3`` and lives in one Availability Zone, served by a zonal
endpoint (``https://BUCKET.s3express-ZONEID.REGION.amazonaws.com``, which the endpoint rules give:
``s3/endpoints.py``, auth scheme ``sigv4-s3express``). Its data requests are not signed
with the caller's keys: the caller asks the bucket for a *session* (``CreateSession``: ``GET /?session``
signed with the caller's keys for the service ``s3express``), and then signs each request with the
session's keys, for the service ``s3express``, sending the session token as ``x-amz-s3session-token``
(never ``X-Amz-Security-Token``). That is what botocore does (``S3ExpressIdentityResolver`` in
``botocore/utils.py``, ``S3ExpressAuth`` in ``botocore/auth.py``); this is a small version of it for the
fast transport.

Sessions last five minutes at AWS. :class:`ExpressSessions` keeps one per bucket and makes a new one
:data:`REFRESH_BEFORE_S` before the old one expires, so requests never carry a session about to lapse;
concurrent requests that find it stale share one ``CreateSession``. A session the bucket refuses before
its time (the server's clock, a revoked session) is forgotten (:meth:`ExpressSessions.forget`) and the
request is retried once with a new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from s3csi.mountflags import DIRECTORY_BUCKET_PATTERN, is_directory_bucket
from s3csi.s3.credentials import Credentials
from s3csi.s3.sts import parse_timestamp

log = logging.getLogger(__name__)

SIGNING_NAME = "s3express"
SESSION_TOKEN_HEADER = "x-amz-s3session-token"
# A session is replaced this long before it expires (the AWS SDKs use a minute too).
REFRESH_BEFORE_S = 60.0
# What a zonal endpoint answers when a session token is no longer good: the request is retried once
# with a new session.
SESSION_ERROR_CODES = frozenset({"ExpiredToken", "InvalidToken", "TokenRefreshRequired"})

__all__ = ["ExpressSessions", "is_directory_bucket", "parse_create_session", "zone_id"]


def refused_session(method: str, code: str, status: int | None) -> bool:
    """Whether a zonal endpoint's error may mean "this session is no longer good": one of its codes, or a
    HEAD's 400/403, whose answer has no body to say why (one new session settles it)."""
    return code in SESSION_ERROR_CODES or (method == "HEAD" and status in (400, 403))


def zone_id(bucket: str) -> str:
    """The Availability Zone id in a directory bucket's name; ValueError for any other name."""
    match = DIRECTORY_BUCKET_PATTERN.fullmatch(bucket)
    if match is None:
        raise ValueError(f"{bucket!r} is not a directory bucket name (BASE--ZONEID--x-s3)")
    return match.group("zone")


class MalformedSession(ValueError):
    """A CreateSession answer without the credentials it must hold."""


def parse_create_session(body: bytes | bytearray) -> Credentials:
    """``<CreateSessionResult><Credentials>`` → the session's keys, token and expiry."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedSession(f"CreateSession answer is not XML: {exc}") from None
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rpartition("}")[2]
        if name in ("SessionToken", "SecretAccessKey", "AccessKeyId", "Expiration") and element.text:
            found[name] = element.text.strip()
    missing = [n for n in ("SessionToken", "SecretAccessKey", "AccessKeyId", "Expiration") if n not in found]
    if missing:
        raise MalformedSession(f"CreateSession answer has no {', '.join(missing)}")
    try:
        expiry = parse_timestamp(found["Expiration"])
    except ValueError:
        raise MalformedSession("CreateSession answer has an Expiration that is not a time") from None
    return Credentials(
        access_key_id=found["AccessKeyId"],
        secret_access_key=found["SecretAccessKey"],
        session_token=found["SessionToken"],
        expiry=expiry,
        source="s3express-session",
    )


def refresh_time(created_at: float, expiry: float, refresh_before_s: float = REFRESH_BEFORE_S) -> float:
    """When a session made at ``created_at`` that expires at ``expiry`` is replaced: ``refresh_before_s``
    before it expires, or halfway through a session shorter than twice that (so a short session is
    still used for a while rather than replaced at every request)."""
    return expiry - min(refresh_before_s, max(0.0, expiry - created_at) / 2)


@dataclass
class _Bucket:
    session: Credentials | None = None
    # Epoch seconds from which a request waits for a new session instead.
    refresh_at: float = 0.0
    creating: asyncio.Task[Credentials] | None = None


class ExpressSessions:
    """One session per directory bucket, made by ``create_session(bucket)`` (the client's CreateSession)
    when there is none or it is within ``refresh_before_s`` of its expiry."""

    def __init__(
        self,
        create_session: Callable[[str], Awaitable[Credentials]],
        *,
        clock: Callable[[], float] = time.time,
        refresh_before_s: float = REFRESH_BEFORE_S,
    ) -> None:
        self._create_session = create_session
        self._clock = clock
        self.refresh_before_s = refresh_before_s
        self._buckets: dict[str, _Bucket] = {}
        self.sessions_created = 0

    async def get(self, bucket: str) -> Credentials:
        state = self._buckets.setdefault(bucket, _Bucket())
        if state.session is not None and self._clock() < state.refresh_at:
            return state.session
        if state.creating is None:
            state.creating = asyncio.create_task(self._create(bucket, state), name=f"CreateSession {bucket}")
        # Shielded: one waiter cancelled (an interrupted read) must not cancel the others' session.
        return await asyncio.shield(state.creating)

    def forget(self, bucket: str) -> None:
        """The bucket refused the session: the next request makes a new one."""
        state = self._buckets.get(bucket)
        if state is not None and state.creating is None:
            state.session = None

    async def _create(self, bucket: str, state: _Bucket) -> Credentials:
        try:
            created_at = self._clock()
            session = await self._create_session(bucket)
            self.sessions_created += 1
            expiry = session.expiry if session.expiry is not None else created_at
            log.debug("new S3 Express session for %s, expires in %.0f s", bucket, expiry - created_at)
            state.session = session
            state.refresh_at = refresh_time(created_at, expiry, self.refresh_before_s)
            return session
        finally:
            state.creating = None

"""AWS Signature Version 4 for S3, with botocore's signer (the one the AWS SDK for Python uses)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from s3csi.s3.credentials import Credentials

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# botocore logs each request's signature at DEBUG; a signature must never reach our logs.
logging.getLogger("botocore.auth").setLevel(logging.INFO)


def payload_hash(body: bytes | memoryview | None, *, sign: bool) -> str:
    """The ``x-amz-content-sha256`` value: the body's SHA-256, or UNSIGNED-PAYLOAD for data bodies
    that are not worth a hash pass (TLS already protects them in transit)."""
    if not body:
        return EMPTY_SHA256
    return hashlib.sha256(body).hexdigest() if sign else UNSIGNED_PAYLOAD


class _Signer(S3SigV4Auth):  # type: ignore[misc]  # botocore ships no type hints
    """botocore's S3 signer, told the payload hash instead of deciding (and hashing) itself."""

    def payload(self, request: AWSRequest) -> str:
        return str(request.context["payload_hash"])


class _SessionSigner(_Signer):
    """A directory bucket's session: its token travels as ``x-amz-s3session-token`` (signed), never as
    ``X-Amz-Security-Token`` (botocore's ``S3ExpressAuth`` does the same)."""

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        super()._modify_request_before_signing(request)
        if "X-Amz-Security-Token" in request.headers:
            del request.headers["X-Amz-Security-Token"]
        request.headers["x-amz-s3session-token"] = self.credentials.token


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    content_sha256: str,
    credentials: Credentials,
    region: str,
    service: str = "s3",
    s3_session: bool = False,
) -> dict[str, str]:
    """``headers`` plus Authorization, X-Amz-Date, X-Amz-Content-SHA256 (and the session token).

    ``url`` must be the encoded URL sent on the wire: its path and query are signed as they are.
    ``service`` and ``region`` are the signing name and region the endpoint rules chose
    (``s3/endpoints.py``): ``s3``, ``s3-outposts`` or ``s3express``.
    ``s3_session`` marks credentials from a directory bucket's CreateSession (s3csi.s3.express).
    """
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    request.context["payload_hash"] = content_sha256
    frozen = ReadOnlyCredentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    (_SessionSigner if s3_session else _Signer)(frozen, service, region).add_auth(request)
    # botocore signs the Host it derives from the URL (port left out when it is the scheme's
    # default); aiohttp sends that same Host, so it is not added here.
    return dict(request.headers.items())

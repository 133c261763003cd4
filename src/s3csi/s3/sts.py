"""STS ``AssumeRoleWithWebIdentity``: a service-account token exchanged for temporary keys.

:class:`WebIdentityCredentials` is the driver's credential source built on it (``AWS_WEB_IDENTITY_TOKEN_FILE``
and ``AWS_ROLE_ARN``, as EKS's IRSA injects them); the pod-level source in ``s3csi.credentials`` calls
:func:`assume_role_with_web_identity` directly with the workload's token.

The call is unsigned (the token is the proof), a Query API POST answered in XML. The wire format is
two pure functions (:func:`web_identity_form`, :func:`parse_assume_role_response`) and one adapter
(:func:`assume_role_with_web_identity`) that posts over aiohttp. Errors are translated here, once:

    AccessDenied, InvalidIdentityToken, ExpiredTokenException, IDPRejectedClaim  → PermissionDenied
    ValidationError, MalformedPolicyDocument, PackedPolicyTooLarge, RegionDisabled → InvalidArgument
    anything else (5xx, throttling, IDPCommunicationError, no connection, timeout) → Unavailable

No message ever carries the token or a returned key: STS's own message text is kept only after every
occurrence of the token is cut out of it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

import aiohttp

from s3csi.errors import InvalidArgument, PermissionDenied, S3csiError, Unavailable
from s3csi.s3.credentials import Credentials

log = logging.getLogger(__name__)

API_VERSION = "2011-06-15"
_DENIED = frozenset({"AccessDenied", "InvalidIdentityToken", "ExpiredTokenException", "IDPRejectedClaim"})
_INVALID = frozenset(
    {"ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge", "RegionDisabledException"}
)


def sts_endpoint_override(env: Mapping[str, str]) -> str | None:
    """``AWS_ENDPOINT_URL_STS``, else ``AWS_ENDPOINT_URL`` (an S3-compatible world serves both), else None."""
    endpoint = env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    if not endpoint.startswith(("http://", "https://")):
        raise InvalidArgument(f"the STS endpoint URL must start with http:// or https://: {endpoint!r}")
    return endpoint.rstrip("/")


def sts_endpoint(override: str | None, region: str) -> str:
    """``override`` (see :func:`sts_endpoint_override`), else AWS's regional endpoint for ``region``."""
    if override:
        return override
    if not region:
        raise InvalidArgument("no STS region: set stsRegion, the --region mount option or AWS_REGION")
    return f"https://sts.{region}.amazonaws.com"


@dataclass(frozen=True)
class WebIdentityRequest:
    endpoint: str
    role_arn: str
    session_name: str
    token: str = ""
    # PEM file of the CAs to trust for an https endpoint (AWS_CA_BUNDLE); None → the system's.
    ca_bundle: str | None = None

    def __repr__(self) -> str:
        return f"WebIdentityRequest(endpoint={self.endpoint!r}, role_arn={self.role_arn!r})"


def web_identity_form(request: WebIdentityRequest) -> dict[str, str]:
    """The Query API form; no DurationSeconds, so STS gives the role's default session (one hour)."""
    return {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": API_VERSION,
        "RoleArn": request.role_arn,
        "RoleSessionName": request.session_name,
        "WebIdentityToken": request.token,
    }


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(root: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _text(root: ElementTree.Element, name: str) -> str:
    found = _find(root, name)
    return (found.text or "").strip() if found is not None else ""


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an ISO 8601 time as STS and IMDS write it (``2026-11-27T06:40:00Z``)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.timestamp()


def parse_assume_role_response(body: bytes, *, source: str) -> Credentials:
    """The ``Credentials`` element of an AssumeRole* response; Unavailable when it is not there."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise Unavailable("STS answered with a body that is not XML") from None
    element = _find(root, "Credentials")
    if element is None:
        raise Unavailable("STS answered without Credentials")
    access_key_id = _text(element, "AccessKeyId")
    secret_access_key = _text(element, "SecretAccessKey")
    session_token = _text(element, "SessionToken")
    expiration = _text(element, "Expiration")
    missing = [
        name
        for name, value in (
            ("AccessKeyId", access_key_id),
            ("SecretAccessKey", secret_access_key),
            ("SessionToken", session_token),
            ("Expiration", expiration),
        )
        if not value
    ]
    if missing:
        raise Unavailable(f"STS answered without {', '.join(missing)}")
    try:
        expiry = parse_timestamp(expiration)
    except ValueError:
        raise Unavailable("STS answered with an Expiration that is not a time") from None
    return Credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expiry=expiry,
        source=source,
    )


def sts_error(status: int, body: bytes, request: WebIdentityRequest) -> S3csiError:
    """The error for a non-200 answer: its class from the STS code, its text free of the token."""
    code, message = "", ""
    try:
        root = ElementTree.fromstring(body)
        code, message = _text(root, "Code"), _text(root, "Message")
    except ElementTree.ParseError:
        pass
    if request.token:
        message = message.replace(request.token, "[token]")
    message = message[:200]
    text = f"STS AssumeRoleWithWebIdentity for {request.role_arn} failed: HTTP {status} {code or '-'}"
    if message:
        text += f": {message}"
    if code in _DENIED or status == 403:
        return PermissionDenied(text)
    if code in _INVALID:
        return InvalidArgument(text)
    return Unavailable(text)


def _ssl_context(request: WebIdentityRequest) -> ssl.SSLContext | bool:
    if not request.ca_bundle or not request.endpoint.startswith("https://"):
        return True
    try:
        return ssl.create_default_context(cafile=request.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InvalidArgument(f"cannot load the CA bundle {request.ca_bundle} ({reason})") from None


async def assume_role_with_web_identity(
    request: WebIdentityRequest,
    *,
    source: str,
    timeout_s: float = 10.0,
) -> Credentials:
    """Exchange ``request.token`` for keys of ``request.role_arn``; one attempt (callers retry)."""
    url = f"{request.endpoint}/"
    ssl_context = _ssl_context(request)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(url, data=web_identity_form(request), ssl=ssl_context) as response,
        ):
            status, body = response.status, await response.read()
    except TimeoutError:
        raise Unavailable(f"STS at {request.endpoint} did not answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise Unavailable(f"cannot reach STS at {request.endpoint}: {type(exc).__name__}") from None
    if status != 200:
        raise sts_error(status, body, request)
    credentials = parse_assume_role_response(body, source=source)
    log.info("assumed role %s for %s through STS", request.role_arn, source)
    return credentials


REFRESH_MARGIN_S = 300.0
"""Keys are exchanged again this many seconds before they expire, as the AWS SDKs do."""


def fresh(credentials: Credentials | None, now: float, margin_s: float = REFRESH_MARGIN_S) -> bool:
    """``credentials`` exist and stay valid for more than ``margin_s`` seconds from ``now``."""
    if credentials is None:
        return False
    return credentials.expiry is None or credentials.expiry - margin_s > now


class WebIdentityCredentials:
    """The token in ``token_file`` exchanged for ``role_arn``'s keys, kept until shortly before they
    expire; the file is read again for each exchange, because kubelet rotates the token in it."""

    name = "web-identity"

    def __init__(
        self,
        *,
        token_file: str,
        role_arn: str,
        session_name: str,
        endpoint: str,
        ca_bundle: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_file = token_file
        self.role_arn = role_arn
        self.session_name = session_name
        self.endpoint = endpoint
        self.ca_bundle = ca_bundle
        self._clock = clock
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Credentials | None:
        async with self._lock:
            if not fresh(self._credentials, self._clock()):
                request = WebIdentityRequest(
                    endpoint=self.endpoint,
                    role_arn=self.role_arn,
                    session_name=self.session_name,
                    token=self._read_token(),
                    ca_bundle=self.ca_bundle,
                )
                self._credentials = await assume_role_with_web_identity(request, source=self.name)
            return self._credentials

    def _read_token(self) -> str:
        try:
            with open(self.token_file, encoding="utf-8") as file:
                token = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise PermissionDenied(f"AWS_WEB_IDENTITY_TOKEN_FILE {self.token_file}: {reason}") from None
        if not token:
            raise PermissionDenied(f"AWS_WEB_IDENTITY_TOKEN_FILE {self.token_file} is empty")
        return token

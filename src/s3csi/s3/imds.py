"""EC2 instance metadata (IMDSv2): the node's instance-profile keys, last in the driver's chain, and the
node's region (:func:`instance_region`), for a pod-level STS exchange whose volume names none.

IMDSv2 first asks for a session token with a PUT (which a hop-limited network refuses to forward
from a container, the point of v2), then reads the role name and its keys with that token. Off EC2
nothing answers on 169.254.169.254: short timeouts keep the chain from stalling, and "nothing there"
is "no credentials here" (None), never an error. The endpoint is configurable
(``AWS_EC2_METADATA_SERVICE_ENDPOINT``), which is also how the tests point it at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from s3csi.errors import InvalidArgument, Unavailable
from s3csi.mountflags import REGION_PATTERN
from s3csi.s3.credentials import Credentials
from s3csi.s3.sts import fresh, parse_timestamp

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
REGION_PATH = "/latest/meta-data/placement/region"
TOKEN_TTL_S = 21600
# What the AWS SDKs use: one second per request, and the metadata service is local or absent.
TIMEOUT_S = 1.0


def parse_role_credentials(body: bytes, *, source: str) -> Credentials:
    """The JSON document IMDS serves for a role; Unavailable when it is not a successful one."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise Unavailable("instance metadata served credentials that are not JSON") from None
    if not isinstance(document, dict) or document.get("Code", "Success") != "Success":
        code = document.get("Code") if isinstance(document, dict) else None
        raise Unavailable(f"instance metadata has no usable credentials (Code {code!r})")
    fields = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")
    missing = [name for name in fields if not isinstance(document.get(name), str) or not document[name]]
    if missing:
        raise Unavailable(f"instance metadata credentials lack {', '.join(missing)}")
    try:
        expiry = parse_timestamp(document["Expiration"])
    except ValueError:
        raise Unavailable("instance metadata credentials have an Expiration that is not a time") from None
    return Credentials(
        access_key_id=document["AccessKeyId"],
        secret_access_key=document["SecretAccessKey"],
        session_token=document["Token"],
        expiry=expiry,
        source=source,
    )


def metadata_endpoint(env: Mapping[str, str]) -> str | None:
    """Where instance metadata is (``AWS_EC2_METADATA_SERVICE_ENDPOINT``, else 169.254.169.254), or None
    when ``AWS_EC2_METADATA_DISABLED=true``. InvalidArgument names the variable that is wrong."""
    disabled = env.get("AWS_EC2_METADATA_DISABLED", "").strip().lower()
    if disabled not in ("", "true", "false"):
        raise InvalidArgument("AWS_EC2_METADATA_DISABLED must be true or false")
    if disabled == "true":
        return None
    endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
    if not endpoint.startswith(("http://", "https://")):
        raise InvalidArgument("AWS_EC2_METADATA_SERVICE_ENDPOINT must start with http:// or https://")
    return endpoint


async def _session_token(session: aiohttp.ClientSession, endpoint: str) -> dict[str, str] | None:
    """IMDSv2's session-token header for the reads that follow; None when the service refuses one."""
    async with session.put(
        endpoint + TOKEN_PATH, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)}
    ) as response:
        if response.status != 200:
            log.debug("instance metadata refused a session token: HTTP %d", response.status)
            return None
        return {"X-aws-ec2-metadata-token": (await response.text()).strip()}


async def instance_region(endpoint: str = DEFAULT_ENDPOINT, *, timeout_s: float = TIMEOUT_S) -> str | None:
    """The region this instance runs in (``placement/region``), or None when nothing answers, or the answer
    is not a region name."""
    endpoint = endpoint.rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            headers = await _session_token(session, endpoint)
            if headers is None:
                return None
            async with session.get(endpoint + REGION_PATH, headers=headers) as response:
                if response.status != 200:
                    log.debug("instance metadata has no region: HTTP %d", response.status)
                    return None
                region = (await response.text()).strip()
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.debug("no instance metadata at %s: %s", endpoint, type(exc).__name__)
        return None
    return region if REGION_PATTERN.fullmatch(region) else None


class InstanceMetadataCredentials:
    """The instance profile's keys, kept until shortly before they expire."""

    name = "instance-metadata"

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self._clock = clock
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Credentials | None:
        async with self._lock:
            if not fresh(self._credentials, self._clock()):
                self._credentials = await self._fetch()
            return self._credentials

    async def _fetch(self) -> Credentials | None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                headers = await _session_token(session, self.endpoint)
                if headers is None:
                    return None
                async with session.get(self.endpoint + CREDENTIALS_PATH, headers=headers) as response:
                    if response.status == 404:
                        return None  # an instance without an instance profile
                    if response.status != 200:
                        raise Unavailable(f"instance metadata answered HTTP {response.status} for the role")
                    role = (await response.text()).strip().splitlines()[0:1]
                if not role:
                    return None
                role_url = self.endpoint + CREDENTIALS_PATH + role[0]
                async with session.get(role_url, headers=headers) as response:
                    if response.status != 200:
                        raise Unavailable(
                            f"instance metadata answered HTTP {response.status} for role {role[0]}"
                        )
                    body = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.debug("no instance metadata at %s: %s", self.endpoint, type(exc).__name__)
            return None
        return parse_role_credentials(body, source=self.name)

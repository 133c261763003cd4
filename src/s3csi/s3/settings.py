"""How to reach S3: endpoint, region, addressing style, pool size, timeouts and retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from s3csi.errors import InvalidArgument
from s3csi.s3.addressing import refuse_userinfo

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Settings:
    """Built once (``from_env`` or by a command's flags), validated when built, never read from
    ``os.environ`` behind the caller's back."""

    # The region requests are signed for, and where AWS's endpoint is when endpoint_url is None.
    region: str = DEFAULT_REGION
    # Scheme, host and optional port of an S3-compatible endpoint; None → https://s3.REGION.amazonaws.com.
    endpoint_url: str | None = None
    # Address buckets as http://host/bucket/key rather than http://bucket.host/key (like mount-s3).
    force_path_style: bool = False
    # Send anonymous (unsigned) requests: public buckets only.
    no_sign_request: bool = False
    # Put in front of the User-Agent header, e.g. "my-app/1.2".
    user_agent_prefix: str | None = None
    # Most open connections to the endpoint; idle ones are kept alive and reused.
    max_connections: int = 64
    # Seconds to establish a TCP (and TLS) connection.
    connect_timeout_s: float = 10.0
    # Seconds for one whole request, from sending it to the last byte of the response.
    request_timeout_s: float = 60.0
    # Tries per call, the first included. Throttling (503 SlowDown, 429, RequestTimeout), 5xx and
    # connection errors are retried with jittered exponential backoff; then the error is raised.
    max_attempts: int = 6
    # Backoff before retry n (n = 1, 2, …) is uniform in [0, min(max, base * 2^(n-1))] seconds.
    retry_base_delay_s: float = 0.1
    retry_max_delay_s: float = 20.0
    # Sign the SHA-256 of object data (PUT bodies) instead of sending UNSIGNED-PAYLOAD. Costs one
    # hash pass over every byte written; some S3-compatible stores demand it. Small control bodies
    # (multipart completion, batch delete, bucket creation) are always signed.
    sign_payload: bool = False
    # PEM file of the CAs to trust for an https endpoint (AWS_CA_BUNDLE); None → the system's.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if not self.region:
            raise InvalidArgument("S3 region must not be empty")
        if self.endpoint_url is not None:
            refuse_userinfo(self.endpoint_url, "S3 endpoint URL")
        if self.endpoint_url is not None and not self.endpoint_url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"S3 endpoint URL must start with http:// or https://: {self.endpoint_url!r}"
            )
        if self.max_connections < 1:
            raise InvalidArgument(f"max_connections must be at least 1, not {self.max_connections}")
        if self.max_attempts < 1:
            raise InvalidArgument(f"max_attempts must be at least 1, not {self.max_attempts}")
        for name in ("connect_timeout_s", "request_timeout_s"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(f"{name} must be positive, not {getattr(self, name)}")
        if self.retry_base_delay_s < 0 or self.retry_max_delay_s < self.retry_base_delay_s:
            raise InvalidArgument("retry delays must satisfy 0 <= retry_base_delay_s <= retry_max_delay_s")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> S3Settings:
        """Settings from the standard AWS variables; explicit ``overrides`` (flags) win.

        ``AWS_ENDPOINT_URL_S3`` beats ``AWS_ENDPOINT_URL``; ``AWS_REGION`` beats ``AWS_DEFAULT_REGION``;
        ``AWS_CA_BUNDLE`` names the CAs for an https endpoint.
        An override of ``None`` means "not given" and leaves the environment's value in place.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidArgument(f"unknown S3 setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            values["endpoint_url"] = endpoint
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        if env.get("AWS_CA_BUNDLE"):
            values["ca_bundle"] = env["AWS_CA_BUNDLE"]
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

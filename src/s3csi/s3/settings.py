"""How to reach S3: endpoint, region, addressing style, pool size, timeouts and retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from s3csi.errors import InvalidArgument
from s3csi.mountflags import ACCOUNT_ID_PATTERN, BUCKET_TYPES, UPLOAD_CHECKSUMS
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
    # Endpoint variants, applied by S3's endpoint rules (s3/endpoints.py): FIPS (AWS_USE_FIPS_ENDPOINT),
    # dual-stack IPv4/IPv6 (--dual-stack, AWS_USE_DUALSTACK_ENDPOINT), Transfer Acceleration.
    use_fips: bool = False
    dual_stack: bool = False
    accelerate: bool = False
    # "general-purpose" or "directory"; None → from the bucket name (NAME--ZONE-ID--x-s3 is a directory).
    bucket_type: str | None = None
    # x-amz-request-payer: requester on every request (the requester pays for them and the transfer).
    requester_pays: bool = False
    # x-amz-expected-bucket-owner on every request: S3 answers 403 when another account owns the bucket.
    expected_bucket_owner: str | None = None
    # "crc32c": x-amz-checksum-crc32c on every PutObject and UploadPart, the parts' checksums listed at
    # completion, so S3 refuses bytes that changed on the way; "off": none (see docs/mount-options.md).
    upload_checksums: str = "off"
    # The region was not given (no flag, AWS_REGION or AWS_DEFAULT_REGION): start from the instance's and
    # follow S3 when it answers that a bucket is in another region (s3/region.py).
    detect_region: bool = False

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
        if self.upload_checksums not in UPLOAD_CHECKSUMS:
            raise InvalidArgument(
                f"upload checksums must be one of {', '.join(UPLOAD_CHECKSUMS)}:"
                f" not {self.upload_checksums!r}"
            )
        if self.bucket_type is not None and self.bucket_type not in BUCKET_TYPES:
            raise InvalidArgument(
                f"bucket type must be one of {', '.join(BUCKET_TYPES)}, not {self.bucket_type!r}"
            )
        if self.expected_bucket_owner is not None and not ACCOUNT_ID_PATTERN.fullmatch(
            self.expected_bucket_owner
        ):
            raise InvalidArgument(
                f"expected bucket owner must be a 12-digit AWS account id, not {self.expected_bucket_owner!r}"
            )
        if self.retry_base_delay_s < 0 or self.retry_max_delay_s < self.retry_base_delay_s:
            raise InvalidArgument("retry delays must satisfy 0 <= retry_base_delay_s <= retry_max_delay_s")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> S3Settings:
        """Settings from the standard AWS variables; explicit ``overrides`` (flags) win.

        ``AWS_ENDPOINT_URL_S3`` beats ``AWS_ENDPOINT_URL``; ``AWS_REGION`` beats ``AWS_DEFAULT_REGION``;
        ``AWS_CA_BUNDLE`` names the CAs for an https endpoint; ``AWS_USE_FIPS_ENDPOINT`` and
        ``AWS_USE_DUALSTACK_ENDPOINT`` (``true``) choose those endpoint variants. Without a region in either
        (nor a ``region`` override), ``detect_region`` is on: see s3/region.py.
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
        values["detect_region"] = not (region or overrides.get("region"))
        if env.get("AWS_CA_BUNDLE"):
            values["ca_bundle"] = env["AWS_CA_BUNDLE"]
        for variable, name in (
            ("AWS_USE_FIPS_ENDPOINT", "use_fips"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "dual_stack"),
        ):
            if env.get(variable, "").lower() == "true":
                values[name] = True
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

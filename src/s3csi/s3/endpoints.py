"""Where a bucket's requests go and how they are signed, decided by botocore's S3 endpoint rule set.

The rule set (the ``endpoint-rule-set-1`` botocore ships for S3, the one every AWS SDK follows) knows
access point ARNs and aliases, Outposts access points, directory buckets (S3 Express One Zone), FIPS,
dual-stack, Transfer Acceleration, path-style and custom endpoints. :func:`resolve` runs it once per
bucket; the client then builds each request's URL from the :class:`ResolvedEndpoint` (a string join) and
signs with its signing name and region, so the data path never evaluates rules.

Two decisions are s3csi's own, made before the rules run, to keep how s3csi has always addressed a
custom endpoint: a host that is an IP address or a single label (``localhost``, ``minio``) cannot carry a
bucket as a sub-domain, so a bucket name (not an ARN) goes in the path there.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from botocore.endpoint_provider import EndpointProvider
from botocore.exceptions import EndpointResolutionError
from botocore.loaders import create_loader

from s3csi.errors import InvalidArgument
from s3csi.s3.addressing import encode_key, query_string, refuse_userinfo


class BucketType(StrEnum):
    """mount-s3's ``--bucket-type``."""

    GENERAL_PURPOSE = "general-purpose"
    DIRECTORY = "directory"


# The rule set's names for how a request is signed (its authSchemes).
SIGV4 = "sigv4"
SIGV4_S3EXPRESS = "sigv4-s3express"
SIGV4A = "sigv4a"
S3EXPRESS_SIGNING_NAME = "s3express"


@dataclass(frozen=True)
class EndpointInputs:
    """What the resolution depends on besides the bucket: one mount's settings, all of them flags or
    environment variables of ``s3csi mount``."""

    region: str
    endpoint_url: str | None = None
    force_path_style: bool = False
    use_fips: bool = False
    dual_stack: bool = False
    accelerate: bool = False
    # None: from the bucket name (``NAME--AZID--x-s3`` is a directory bucket).
    bucket_type: BucketType | None = None


@dataclass(frozen=True)
class ResolvedEndpoint:
    """One bucket's requests: ``scheme://netloc`` + ``base_path`` + ``/KEY``."""

    scheme: str
    netloc: str
    # "" when the bucket is in the host name; "/BUCKET" (encoded) when it is in the path.
    base_path: str
    signing_name: str  # s3, s3-outposts or s3express
    signing_region: str
    auth_scheme: str  # sigv4 or sigv4-s3express
    bucket_type: BucketType

    @property
    def path_style(self) -> bool:
        return bool(self.base_path)

    def url(self, key: str | None = None, params: Mapping[str, str | None] | None = None) -> str:
        """The URL of the bucket (``key`` None) or of an object, already encoded."""
        query = f"?{query_string(params)}" if params else ""
        path = f"{self.base_path}/{encode_key(key)}" if key is not None else self.base_path or "/"
        return f"{self.scheme}://{self.netloc}{path}{query}"


def resolve(bucket: str, inputs: EndpointInputs) -> ResolvedEndpoint:
    """Run the S3 rule set for ``bucket``; InvalidArgument naming what cannot be combined otherwise
    (an access point with path-style, an Outposts access point with FIPS, …)."""
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Region": inputs.region,
        "UseFIPS": inputs.use_fips,
        "UseDualStack": inputs.dual_stack,
        "Accelerate": inputs.accelerate,
        # Regional endpoints in us-east-1 too (s3.us-east-1.amazonaws.com), never the legacy global one.
        "UseGlobalEndpoint": False,
        # An access point ARN names its region: requests go there, whatever --region says (as mount-s3).
        "UseArnRegion": True,
        # Multi-Region Access Points need SigV4A (asymmetric keys), which s3csi does not implement.
        "DisableMultiRegionAccessPoints": True,
        # An ARN names an access point, never a path: the flag is for bucket names (as botocore does).
        "ForcePathStyle": inputs.force_path_style and not bucket.startswith("arn:"),
    }
    if inputs.endpoint_url is not None:
        host = _check_endpoint_url(inputs.endpoint_url)
        params["Endpoint"] = inputs.endpoint_url.rstrip("/")
        if not bucket.startswith("arn:") and (_is_ip(host) or "." not in host):
            params["ForcePathStyle"] = True
    try:
        result = _provider().resolve_endpoint(**params)
    except EndpointResolutionError as exc:
        raise InvalidArgument(
            f"cannot address bucket {bucket[:200]!r}: {exc.kwargs.get('msg', exc)}"
        ) from None
    parts = urlsplit(result.url)
    scheme, signing_name, signing_region, auth_scheme = _auth(bucket, parts.scheme, result.properties)
    inferred = BucketType.DIRECTORY if auth_scheme == SIGV4_S3EXPRESS else BucketType.GENERAL_PURPOSE
    bucket_type = inputs.bucket_type or inferred
    if bucket_type is not inferred:
        if inputs.endpoint_url is None:
            raise InvalidArgument(
                f"--bucket-type {bucket_type}: {bucket[:200]!r} is a {inferred} bucket name on AWS"
                " (directory buckets are named NAME--ZONE-ID--x-s3)"
            )
        # A custom endpoint may serve a directory bucket under any name: sign as S3 Express does.
        if bucket_type is BucketType.DIRECTORY:
            signing_name, auth_scheme = S3EXPRESS_SIGNING_NAME, SIGV4_S3EXPRESS
        else:
            signing_name, auth_scheme = "s3", SIGV4
    return ResolvedEndpoint(
        scheme=scheme,
        netloc=parts.netloc,
        base_path=parts.path.rstrip("/"),
        signing_name=signing_name,
        signing_region=signing_region,
        auth_scheme=auth_scheme,
        bucket_type=bucket_type,
    )


def _auth(bucket: str, scheme: str, properties: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(scheme, signing name, signing region, auth scheme) from the rule set's ``authSchemes``: the first
    one s3csi can sign with (SigV4, or SigV4 with S3 Express session keys)."""
    schemes = properties.get("authSchemes") or [{"name": SIGV4, "signingName": "s3"}]
    for auth in schemes:
        if auth.get("name") in (SIGV4, SIGV4_S3EXPRESS) and auth.get("signingRegion"):
            return scheme, str(auth.get("signingName", "s3")), str(auth["signingRegion"]), str(auth["name"])
    names = ", ".join(str(auth.get("name")) for auth in schemes)
    raise InvalidArgument(
        f"bucket {bucket[:200]!r} needs signing by {names}; s3csi signs with SigV4 only"
        " (Outposts on Snow devices and Multi-Region Access Points need SigV4A)"
    )


def _check_endpoint_url(endpoint_url: str) -> str:
    """The host of a custom endpoint ``http(s)://HOST[:PORT]``; InvalidArgument for anything else."""
    refuse_userinfo(endpoint_url, "S3 endpoint URL")
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"S3 endpoint URL must be http(s)://HOST[:PORT]: {endpoint_url!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise InvalidArgument(f"S3 endpoint URL must not have a path or query: {endpoint_url!r}")
    return parts.hostname


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.cache
def _provider() -> EndpointProvider:
    """botocore's S3 rule set and partitions, loaded once per process (a few hundred KB of JSON)."""
    loader = create_loader()
    return EndpointProvider(
        ruleset_data=loader.load_service_model("s3", "endpoint-rule-set-1"),
        partition_data=loader.load_data("partitions"),
    )

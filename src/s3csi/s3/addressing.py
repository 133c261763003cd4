"""Where a request goes: the URL of a bucket or an object, path-style or virtual-hosted.

Keys are percent-encoded once, byte for byte (UTF-8), keeping only ``/`` and RFC 3986's unreserved
characters: this is the form S3 expects both on the wire and in SigV4's canonical URI, so the URL
built here is sent verbatim (never normalised: ``a//b`` and ``./`` are distinct keys in S3).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from s3csi.errors import InvalidArgument

# Buckets that can be a DNS label: virtual-hosted addressing works for them (no dots over TLS,
# where the certificate's wildcard covers one label only).
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def encode_key(key: str) -> str:
    return quote(key, safe="/~")


def encode_query_value(value: str) -> str:
    return quote(value, safe="~")


def query_string(params: Mapping[str, str | None]) -> str:
    """``a=1&flag``: sorted (SigV4 signs the sorted form; sending it sorted keeps the two equal);
    a value of None is a bare flag such as ``?uploads``."""
    parts = []
    for name in sorted(params):
        value = params[name]
        parts.append(
            encode_query_value(name)
            if value is None
            else f"{encode_query_value(name)}={encode_query_value(value)}"
        )
    return "&".join(parts)


@dataclass(frozen=True)
class Endpoint:
    """The parsed endpoint: scheme, host (with any port) and whether buckets go in the path."""

    scheme: str
    netloc: str
    path_style: bool

    @classmethod
    def build(cls, endpoint_url: str | None, region: str, *, force_path_style: bool) -> Endpoint:
        if endpoint_url is None:
            return cls("https", f"s3.{region}.amazonaws.com", force_path_style)
        refuse_userinfo(endpoint_url, "S3 endpoint URL")
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"S3 endpoint URL must be http(s)://HOST[:PORT]: {endpoint_url!r}")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise InvalidArgument(f"S3 endpoint URL must not have a path or query: {endpoint_url!r}")
        # An IP address or a single-label host cannot carry a bucket as a sub-domain.
        path_style = force_path_style or _is_ip(parts.hostname) or "." not in parts.hostname
        return cls(parts.scheme, parts.netloc, path_style)

    def url(self, bucket: str, key: str | None = None, params: Mapping[str, str | None] | None = None) -> str:
        """The URL of a bucket (``key`` None) or an object, already encoded."""
        query = f"?{query_string(params)}" if params else ""
        object_path = "" if key is None else "/" + encode_key(key)
        if self._virtual_hosted(bucket):
            return f"{self.scheme}://{bucket}.{self.netloc}{object_path or '/'}{query}"
        return f"{self.scheme}://{self.netloc}/{encode_key(bucket)}{object_path}{query}"

    def _virtual_hosted(self, bucket: str) -> bool:
        if self.path_style or not _DNS_BUCKET.match(bucket) or ".." in bucket:
            return False
        return not (self.scheme == "https" and "." in bucket)


def refuse_userinfo(endpoint_url: str, what: str) -> None:
    """Refuse ``https://user:password@host``: S3 keys come from the credential chain, never from a URL
    that error messages, logs and argv would show. The message does not repeat the URL."""
    parts = urlsplit(endpoint_url)
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            f"{what} must not carry a user name or password; give S3 keys through the environment, "
            "a credentials file or a secret"
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def copy_source(bucket: str, key: str) -> str:
    """The ``x-amz-copy-source`` header value: ``bucket/key``, URL-encoded."""
    return f"{encode_key(bucket)}/{encode_key(key)}"

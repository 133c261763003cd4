"""How keys and queries are written in a URL (which host and path a bucket has: ``endpoints.py``).

Keys are percent-encoded once, byte for byte (UTF-8), keeping only ``/`` and RFC 3986's unreserved
characters: this is the form S3 expects both on the wire and in SigV4's canonical URI, so the URL
built here is sent verbatim (never normalised: ``a//b`` and ``./`` are distinct keys in S3).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from s3csi.errors import InvalidArgument


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


def refuse_userinfo(endpoint_url: str, what: str) -> None:
    """Refuse ``https://user:password@host``: S3 keys come from the credential chain, never from a URL
    that error messages, logs and argv would show. The message does not repeat the URL."""
    parts = urlsplit(endpoint_url)
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            f"{what} must not carry a user name or password; give S3 keys through the environment, "
            "a credentials file or a secret"
        )


def copy_source(bucket: str, key: str) -> str:
    """The ``x-amz-copy-source`` header value: ``bucket/key``, URL-encoded."""
    return f"{encode_key(bucket)}/{encode_key(key)}"

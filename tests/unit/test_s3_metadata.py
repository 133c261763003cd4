"""User metadata to and from HTTP headers (pure)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3csi.s3.client import metadata_headers, user_metadata


@pytest.mark.parametrize(
    ("headers", "metadata"),
    [
        ({}, {}),
        ({"Content-Type": "text/plain", "ETag": '"e"'}, {}),
        ({"x-amz-meta-mtime": "1.5", "X-Amz-Meta-Mode": "33188"}, {"mtime": "1.5", "mode": "33188"}),
        ({"x-amz-meta-": "empty name"}, {"": "empty name"}),
        ({"x-amz-metadata-directive": "REPLACE"}, {}),  # not user metadata
    ],
)
def test_user_metadata(headers: dict[str, str], metadata: dict[str, str]) -> None:
    assert user_metadata(CIMultiDictProxy(CIMultiDict(headers))) == metadata


@pytest.mark.parametrize(
    ("metadata", "headers"),
    [
        (None, {}),
        ({}, {}),
        ({"mtime": "5", "mode": "33188"}, {"x-amz-meta-mtime": "5", "x-amz-meta-mode": "33188"}),
    ],
)
def test_metadata_headers(metadata: dict[str, str] | None, headers: dict[str, str]) -> None:
    assert metadata_headers(metadata) == headers
    assert user_metadata(headers) == (metadata or {})

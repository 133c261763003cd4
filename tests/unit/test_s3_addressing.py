"""URL building: path-style and virtual-hosted addressing (as s3csi always did them, now by the S3
endpoint rules), key and query encoding."""

from __future__ import annotations

import pytest

from s3csi.errors import InvalidArgument
from s3csi.s3.addressing import copy_source, encode_key, query_string
from s3csi.s3.endpoints import EndpointInputs, resolve
from s3csi.s3.settings import S3Settings


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("plain.txt", "plain.txt"),
        ("dir/file", "dir/file"),
        ("a b", "a%20b"),
        ("a+b", "a%2Bb"),
        ("100%", "100%25"),
        ("tilde~", "tilde~"),
        ("a//b", "a//b"),
        ("./x/../y", "./x/../y"),
        ("ü/ñ", "%C3%BC/%C3%B1"),
        ("q?x=1&y#z", "q%3Fx%3D1%26y%23z"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
    ],
)
def test_keys_are_percent_encoded_once_keeping_slashes(key: str, encoded: str) -> None:
    assert encode_key(key) == encoded


def test_query_string_is_sorted_encoded_and_keeps_bare_flags() -> None:
    assert query_string({"uploads": None}) == "uploads"
    assert (
        query_string({"prefix": "a b/+", "list-type": "2", "continuation-token": "x/y="})
        == "continuation-token=x%2Fy%3D&list-type=2&prefix=a%20b%2F%2B"
    )


@pytest.mark.parametrize(
    ("endpoint_url", "region", "path_style", "bucket", "key", "url"),
    [
        (None, "eu-west-1", False, "my-bucket", "a b", "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b"),
        (None, "us-east-1", False, "my-bucket", None, "https://my-bucket.s3.us-east-1.amazonaws.com/"),
        (None, "eu-west-1", True, "my-bucket", "k", "https://s3.eu-west-1.amazonaws.com/my-bucket/k"),
        # Dots break the TLS wildcard certificate: path-style over https.
        (None, "eu-west-1", False, "my.bucket", "k", "https://s3.eu-west-1.amazonaws.com/my.bucket/k"),
        ("http://minio.local:9000", "us-east-1", False, "b-1", "k", "http://b-1.minio.local:9000/k"),
        ("http://minio.local:9000", "us-east-1", True, "b-1", "k", "http://minio.local:9000/b-1/k"),
        # An IP address or a single-label host cannot have a bucket sub-domain.
        ("http://127.0.0.1:9000", "us-east-1", False, "b-1", "k", "http://127.0.0.1:9000/b-1/k"),
        ("http://localhost:9000", "us-east-1", False, "b-1", None, "http://localhost:9000/b-1"),
        # Not a DNS name (upper case, underscore): path-style.
        (
            "https://s3.example.com",
            "us-east-1",
            False,
            "Old_Bucket",
            "k",
            "https://s3.example.com/Old_Bucket/k",
        ),
        ("https://s3.example.com/", "us-east-1", False, "b-1", "a//b", "https://b-1.s3.example.com/a//b"),
    ],
)
def test_urls(  # noqa: PLR0917  (one table row)
    endpoint_url: str | None, region: str, path_style: bool, bucket: str, key: str | None, url: str
) -> None:
    inputs = EndpointInputs(region=region, endpoint_url=endpoint_url, force_path_style=path_style)
    assert resolve(bucket, inputs).url(key) == url


def test_url_with_query() -> None:
    endpoint = resolve("b", EndpointInputs("us-east-1", "http://127.0.0.1:1", force_path_style=True))
    assert endpoint.url("k", {"partNumber": "3", "uploadId": "u+1"}) == (
        "http://127.0.0.1:1/b/k?partNumber=3&uploadId=u%2B1"
    )
    assert endpoint.url(None, {"delete": None}) == "http://127.0.0.1:1/b?delete"


@pytest.mark.parametrize("endpoint_url", ["ftp://host", "http://", "http://host/path", "http://host?x=1"])
def test_bad_endpoints_are_refused(endpoint_url: str) -> None:
    with pytest.raises(InvalidArgument, match="endpoint"):
        resolve("b-1", EndpointInputs("us-east-1", endpoint_url))


def test_copy_source_encodes_the_key() -> None:
    assert copy_source("b", "dir/a b+ü") == "b/dir/a%20b%2B%C3%BC"


@pytest.mark.parametrize(
    "url", ["https://user:hunter2@s3.example.com", "http://AKIDEXAMPLE@127.0.0.1:9000", "https://:pw@host"]
)
def test_an_endpoint_with_credentials_in_it_is_refused_without_repeating_them(url: str) -> None:
    for build in (
        lambda: resolve("b-1", EndpointInputs("us-east-1", url)),
        lambda: S3Settings(endpoint_url=url),
    ):
        with pytest.raises(InvalidArgument, match="must not carry a user name or password") as raised:
            build()
        assert url not in str(raised.value) and "hunter2" not in str(raised.value)

from __future__ import annotations

import pytest

from s3csi.errors import InvalidArgument
from s3csi.podmounter.mount_request import build_mount_request, mount_argv
from s3csi.s3.settings import S3Settings

AWS = S3Settings(region="eu-west-1")
LOCAL = S3Settings(region="us-east-1", endpoint_url="http://127.0.0.1:9000", force_path_style=True)


def request(prefix: str = "", args: tuple[str, ...] = ("--allow-root",), s3: S3Settings = LOCAL) -> object:
    return build_mount_request(
        volume_id="v", bucket="b", prefix=prefix, args=args, s3=s3, credentials_file="credentials/credentials"
    )


def test_the_request_carries_the_drivers_endpoint_and_no_secret() -> None:
    assert request() == {
        "version": 1,
        "volume_id": "v",
        "bucket": "b",
        "prefix": "",
        "args": ["--allow-root"],
        "env": {
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:9000",
            "force_path_style": True,
            "credentials_file": "credentials/credentials",
        },
    }


def test_prefix_from_the_volume_and_from_the_options_cannot_both_be_set() -> None:
    with pytest.raises(InvalidArgument, match="prefix"):
        request(prefix="a/", args=("--prefix=b/",))


@pytest.mark.parametrize(
    ("prefix", "args", "s3", "expected"),
    [
        (
            "",
            ("--allow-root",),
            LOCAL,
            [
                "b",
                "/dev/fd/7",
                "--allow-root",
                "--endpoint-url=http://127.0.0.1:9000",
                "--region=us-east-1",
                "--force-path-style",
            ],
        ),
        (
            "data/",
            ("--read-only",),
            AWS,
            ["b", "/dev/fd/7", "--read-only", "--prefix=data/", "--region=eu-west-1"],
        ),
        # the volume's own region and addressing style win over the driver's defaults
        (
            "",
            ("--region=ap-south-1", "--force-path-style"),
            LOCAL,
            [
                "b",
                "/dev/fd/7",
                "--region=ap-south-1",
                "--force-path-style",
                "--endpoint-url=http://127.0.0.1:9000",
            ],
        ),
        ("", ("--prefix=p/",), AWS, ["b", "/dev/fd/7", "--prefix=p/", "--region=eu-west-1"]),
    ],
)
def test_mount_argv(prefix: str, args: tuple[str, ...], s3: S3Settings, expected: list[str]) -> None:
    built = build_mount_request(
        volume_id="v", bucket="b", prefix=prefix, args=args, s3=s3, credentials_file=None
    )
    assert mount_argv(built, 7) == expected

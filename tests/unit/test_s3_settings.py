"""S3Settings.from_env and validation."""

from __future__ import annotations

from typing import Any

import pytest

from s3csi.errors import InvalidArgument
from s3csi.s3 import S3Settings


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ({}, {}, {"region": "us-east-1", "endpoint_url": None}),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, {}, {"region": "eu-west-1"}),
        ({"AWS_DEFAULT_REGION": "us-west-2"}, {}, {"region": "us-west-2"}),
        ({"AWS_ENDPOINT_URL": "http://a:1"}, {}, {"endpoint_url": "http://a:1"}),
        (
            {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"},
            {},
            {"endpoint_url": "http://s3:2"},
        ),
        ({"AWS_REGION": "eu-west-1"}, {"region": "ap-south-1"}, {"region": "ap-south-1"}),
        ({"AWS_REGION": "eu-west-1"}, {"region": None}, {"region": "eu-west-1"}),
        (
            {"AWS_ENDPOINT_URL": ""},
            {"force_path_style": True},
            {"endpoint_url": None, "force_path_style": True},
        ),
        ({"AWS_CA_BUNDLE": "/etc/ca.pem"}, {}, {"ca_bundle": "/etc/ca.pem"}),
        (
            {},
            {"user_agent_prefix": "app/1", "max_attempts": 2},
            {"user_agent_prefix": "app/1", "max_attempts": 2},
        ),
    ],
)
def test_from_env(env: dict[str, str], overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    settings = S3Settings.from_env(env, **overrides)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bogus": 1}, "unknown S3 setting"),
        ({"region": ""}, "region"),
        ({"endpoint_url": "s3.example.com"}, "endpoint"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"request_timeout_s": 0}, "request_timeout_s"),
        ({"retry_base_delay_s": 5.0, "retry_max_delay_s": 1.0}, "retry delays"),
    ],
)
def test_bad_settings_are_refused_by_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        S3Settings.from_env({}, **overrides)

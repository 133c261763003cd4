"""The driver's chain as the environment configures it: which sources, in which order, and bad settings."""

from __future__ import annotations

import pytest

from s3csi.credentials.driver import driver_credential_provider
from s3csi.errors import InvalidArgument
from s3csi.s3.imds import DEFAULT_ENDPOINT, InstanceMetadataCredentials
from s3csi.s3.sts import WebIdentityCredentials

ROLE = "arn:aws:iam::123456789012:role/driver"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["environment", "shared-credentials-file", "instance-metadata"]),
        ({"AWS_EC2_METADATA_DISABLED": "true"}, ["environment", "shared-credentials-file"]),
        ({"AWS_EC2_METADATA_DISABLED": "TRUE"}, ["environment", "shared-credentials-file"]),
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": ROLE},
            ["environment", "shared-credentials-file", "web-identity", "instance-metadata"],
        ),
    ],
)
def test_sources_in_order(env: dict[str, str], names: list[str]) -> None:
    assert [source.name for source in driver_credential_provider(env).sources] == names


def test_web_identity_and_imds_settings_come_from_the_environment() -> None:
    env = {
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
        "AWS_ROLE_ARN": ROLE,
        "AWS_ROLE_SESSION_NAME": "node-1",
        "AWS_REGION": "eu-west-3",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1338/",
    }
    sources = driver_credential_provider(env).sources
    web, imds = sources[2], sources[3]
    assert isinstance(web, WebIdentityCredentials) and isinstance(imds, InstanceMetadataCredentials)
    assert (web.token_file, web.role_arn, web.session_name) == ("/var/run/token", ROLE, "node-1")
    assert web.endpoint == "https://sts.eu-west-3.amazonaws.com"
    assert imds.endpoint == "http://127.0.0.1:1338"
    defaults = driver_credential_provider({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": ROLE}).sources
    assert isinstance(defaults[2], WebIdentityCredentials) and defaults[2].session_name == "s3csi-driver"
    assert isinstance(defaults[3], InstanceMetadataCredentials) and defaults[3].endpoint == DEFAULT_ENDPOINT
    sts = driver_credential_provider({**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}).sources[2]
    assert isinstance(sts, WebIdentityCredentials) and sts.endpoint == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AWS_ROLE_ARN": ROLE}, "AWS_WEB_IDENTITY_TOKEN_FILE is not set"),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, "AWS_ROLE_ARN is not set"),
        ({"AWS_EC2_METADATA_DISABLED": "yes"}, "AWS_EC2_METADATA_DISABLED must be true or false"),
        (
            {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"},
            "AWS_EC2_METADATA_SERVICE_ENDPOINT must start",
        ),
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": ROLE, "AWS_ENDPOINT_URL_STS": "sts.local"},
            "STS endpoint URL",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        driver_credential_provider(env)

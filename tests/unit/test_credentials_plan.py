"""The credential plan of one publish: tables over every source and every bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3csi.credentials.plan import (
    DEFAULT_AUDIENCE,
    AssumePodRole,
    CredentialInputs,
    UseDriver,
    UseSecret,
    plan_credentials,
)
from s3csi.errors import InvalidArgument, PermissionDenied
from s3csi.volume.context import AuthenticationSource

NOW = 1_800_000_000.0
SECRET = {
    "access_key_id": "AKIAEXAMPLEKEY00001",
    "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE",
}
ROLE = "arn:aws:iam::123456789012:role/team-a"
OTHER_ROLE = "arn:aws:iam::123456789012:role/team-b"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.payload-of-the-token.signature"


def tokens(
    audience: str = DEFAULT_AUDIENCE, token: Any = TOKEN, expires: Any = "2030-01-01T00:00:00Z"
) -> str:
    return json.dumps({audience: {"token": token, "expirationTimestamp": expires}})


def pod(**overrides: Any) -> CredentialInputs:
    values: dict[str, Any] = {
        "authentication_source": AuthenticationSource.POD,
        "service_account_tokens": tokens(),
        "role_arn": ROLE,
        "pod_namespace": "team-a",
        "service_account_name": "reader",
        "driver_region": "eu-west-1",
    }
    values.update(overrides)
    return CredentialInputs(**values)


def secret(secrets: dict[str, str]) -> CredentialInputs:
    return CredentialInputs(authentication_source=AuthenticationSource.SECRET, secrets=secrets)


def test_driver_ignores_secrets_and_tokens_sent_along() -> None:
    inputs = CredentialInputs(
        authentication_source=AuthenticationSource.DRIVER, secrets=SECRET, service_account_tokens="not json"
    )
    assert plan_credentials(inputs, now=NOW) == UseDriver()


def test_secret_gives_its_keys() -> None:
    plan = plan_credentials(secret({**SECRET, "session_token": "FwoGZXIvYXdzEXAMPLE"}), now=NOW)
    assert isinstance(plan, UseSecret)
    assert plan.credentials.access_key_id == SECRET["access_key_id"]
    assert plan.credentials.secret_access_key == SECRET["secret_access_key"]
    assert plan.credentials.session_token == "FwoGZXIvYXdzEXAMPLE"
    assert plan.credentials.source == "node-publish secret"
    assert SECRET["secret_access_key"] not in repr(plan)


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({}, "needs a node-publish secret"),
        ({"secret_access_key": SECRET["secret_access_key"]}, "access_key_id is required"),
        ({"access_key_id": SECRET["access_key_id"]}, "secret_access_key is required"),
        ({**SECRET, "access_key_id": ""}, "access_key_id is required"),
        ({**SECRET, "secret_access_key": "   "}, "secret_access_key is required"),
        ({**SECRET, "session_token": ""}, "session_token is required"),
        ({**SECRET, "secret_access_key": "abc def-SECRETPART"}, "secret_access_key contains whitespace"),
        ({**SECRET, "secret_access_key": "SECRETPART\n"}, "secret_access_key contains whitespace"),
        (
            {**SECRET, "access_key_id": "AKIA\x00SECRETPART"},
            "access_key_id contains whitespace or non-printable",
        ),
        (
            {**SECRET, "secret_access_key": "SECRETPART\u00e9"},
            "secret_access_key contains whitespace or non-",
        ),
        ({**SECRET, "access_key_id": "A" * 129}, "access_key_id is longer than 128"),
        ({**SECRET, "secret_access_key": "S" * 1025}, "secret_access_key is longer than 1024"),
        ({**SECRET, "session_token": "T" * 8193}, "session_token is longer than 8192"),
        ({**SECRET, "key_id": "x"}, "unknown key(s) key_id"),
    ],
)
def test_secret_errors_name_the_key_never_the_value(secrets: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        plan_credentials(secret(secrets), now=NOW)
    text = str(raised.value)
    assert message in text
    for value in secrets.values():
        if len(value) > 3:
            assert value not in text
    assert "SECRETPART" not in text


def test_pod_plan_uses_the_audience_token_the_role_and_the_region() -> None:
    plan = plan_credentials(pod(), now=NOW)
    assert plan == AssumePodRole(
        role_arn=ROLE,
        sts_region="eu-west-1",
        session_name="s3csi-team-a-reader",
        token=TOKEN,
        token_expiry=1_893_456_000.0,
    )
    assert TOKEN not in repr(plan)


@pytest.mark.parametrize(
    ("overrides", "role", "region"),
    [
        ({}, ROLE, "eu-west-1"),
        ({"role_arn": None, "service_account_role_arn": OTHER_ROLE}, OTHER_ROLE, "eu-west-1"),
        ({"service_account_role_arn": OTHER_ROLE}, ROLE, "eu-west-1"),  # the volume's roleArn wins
        ({"sts_region": "ap-south-1", "mount_args": ("--region=us-west-2",)}, ROLE, "ap-south-1"),
        ({"mount_args": ("--allow-other", "--region=us-west-2")}, ROLE, "us-west-2"),
    ],
)
def test_pod_role_and_region_precedence(overrides: dict[str, Any], role: str, region: str) -> None:
    plan = plan_credentials(pod(**overrides), now=NOW)
    assert isinstance(plan, AssumePodRole)
    assert (plan.role_arn, plan.sts_region) == (role, region)


def test_the_audience_is_configurable() -> None:
    plan = plan_credentials(pod(service_account_tokens=tokens("s3csi.io"), audience="s3csi.io"), now=NOW)
    assert isinstance(plan, AssumePodRole)
    assert plan.token == TOKEN


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"service_account_tokens": None}, InvalidArgument, "needs the volume context key"),
        ({"service_account_tokens": "{" + TOKEN}, InvalidArgument, "is not JSON"),
        ({"service_account_tokens": json.dumps([TOKEN])}, InvalidArgument, "is not a JSON object"),
        (
            {"service_account_tokens": tokens("vault")},
            InvalidArgument,
            "no token for audience 'sts.amazonaws.com'",
        ),
        ({"service_account_tokens": tokens(token="")}, InvalidArgument, "token is empty"),
        ({"service_account_tokens": tokens(token=7)}, InvalidArgument, "token is empty"),
        ({"service_account_tokens": tokens(expires="soon")}, InvalidArgument, "expirationTimestamp"),
        ({"service_account_tokens": tokens(expires="2020-01-01T00:00:00Z")}, PermissionDenied, "expired"),
        ({"role_arn": None}, InvalidArgument, "eks.amazonaws.com/role-arn"),
        (
            {"role_arn": None, "service_account_role_arn": "team-a"},
            InvalidArgument,
            "must be an IAM role ARN",
        ),
    ],
)
def test_pod_errors(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        plan_credentials(pod(**overrides), now=NOW)
    assert message in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert "payload-of-the-token" not in str(raised.value)

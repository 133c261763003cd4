"""STS and IMDS wire formats: responses parsed, errors classified and free of tokens and keys."""

from __future__ import annotations

import asyncio

import pytest

from s3csi.errors import InvalidArgument, PermissionDenied, Unavailable
from s3csi.s3.imds import parse_role_credentials
from s3csi.s3.sts import (
    WebIdentityRequest,
    assume_role_with_web_identity,
    parse_assume_role_response,
    sts_endpoint,
    sts_endpoint_override,
    sts_error,
    web_identity_form,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.claims.signature"
REQUEST = WebIdentityRequest(
    endpoint="https://sts.eu-west-1.amazonaws.com",
    role_arn="arn:aws:iam::123456789012:role/r",
    session_name="s3csi-ns-sa",
    token=TOKEN,
)
RESPONSE = b"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>secret/value</SecretAccessKey>
      <SessionToken>session-token-value</SessionToken>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"""


def test_form_and_repr() -> None:
    form = web_identity_form(REQUEST)
    assert form["Action"] == "AssumeRoleWithWebIdentity"
    assert form["WebIdentityToken"] == TOKEN
    assert form["RoleSessionName"] == "s3csi-ns-sa"
    assert "DurationSeconds" not in form
    assert TOKEN not in repr(REQUEST)


def test_response_is_parsed() -> None:
    credentials = parse_assume_role_response(RESPONSE, source="pod service account")
    assert credentials.access_key_id == "ASIAEXAMPLE"
    assert credentials.secret_access_key == "secret/value"
    assert credentials.session_token == "session-token-value"
    assert credentials.expiry == 1_893_456_000.0
    assert credentials.source == "pod service account"


@pytest.mark.parametrize(
    "body",
    [b"not xml", b"<Response/>", RESPONSE.replace(b"<SessionToken>session-token-value</SessionToken>", b"")],
)
def test_bad_responses_are_unavailable(body: bytes) -> None:
    with pytest.raises(Unavailable):
        parse_assume_role_response(body, source="x")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "AccessDenied", PermissionDenied),
        (400, "InvalidIdentityToken", PermissionDenied),
        (400, "ExpiredTokenException", PermissionDenied),
        (400, "ValidationError", InvalidArgument),
        (503, "ServiceUnavailable", Unavailable),
        (400, "IDPCommunicationError", Unavailable),
    ],
)
def test_errors_are_classified_and_never_echo_the_token(
    status: int, code: str, error: type[Exception]
) -> None:
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>token {TOKEN} was refused</Message></Error></ErrorResponse>"
    ).encode()
    raised = sts_error(status, body, REQUEST)
    assert isinstance(raised, error)
    assert code in str(raised)
    assert REQUEST.role_arn in str(raised)
    assert TOKEN not in str(raised)


@pytest.mark.parametrize(
    ("env", "region", "endpoint"),
    [
        ({}, "eu-west-1", "https://sts.eu-west-1.amazonaws.com"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"}, "eu-west-1", "http://127.0.0.1:9000"),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9001"},
            "x",
            "http://127.0.0.1:9001",
        ),
    ],
)
def test_sts_endpoint(env: dict[str, str], region: str, endpoint: str) -> None:
    assert sts_endpoint(sts_endpoint_override(env), region) == endpoint


def test_sts_endpoint_refuses_a_bad_url() -> None:
    with pytest.raises(InvalidArgument, match="STS endpoint URL"):
        sts_endpoint_override({"AWS_ENDPOINT_URL_STS": "sts.local"})


def test_imds_document_is_parsed_and_failures_are_unavailable() -> None:
    body = (
        b'{"Code": "Success", "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "imds-secret",'
        b' "Token": "imds-token", "Expiration": "2030-01-01T00:00:00Z"}'
    )
    credentials = parse_role_credentials(body, source="instance-metadata")
    assert (credentials.access_key_id, credentials.session_token) == ("ASIAIMDS", "imds-token")
    assert credentials.expiry == 1_893_456_000.0
    for bad in (b"[]", b'{"Code": "Failure"}', b'{"Code": "Success", "AccessKeyId": "A"}', b"{"):
        with pytest.raises(Unavailable) as raised:
            parse_role_credentials(bad, source="instance-metadata")
        assert "imds-secret" not in str(raised.value)


def test_an_unreadable_ca_bundle_is_refused_before_any_request() -> None:
    request = WebIdentityRequest(
        endpoint="https://sts.eu-west-1.amazonaws.com",
        role_arn="arn:aws:iam::123456789012:role/r",
        session_name="s",
        token=TOKEN,
        ca_bundle="/nonexistent/ca.pem",
    )
    with pytest.raises(InvalidArgument, match=r"cannot load the CA bundle /nonexistent/ca\.pem") as raised:
        asyncio.run(assume_role_with_web_identity(request, source="pod service account"))
    assert TOKEN not in str(raised.value)

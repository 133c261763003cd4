"""The message the IAM-enforcing tests fail with when moto stops evaluating policies as AWS does."""

from __future__ import annotations

from tests.integration.iam_support import list_bucket_mismatch


def test_an_access_denied_names_the_action_moto_evaluates_and_what_to_do() -> None:
    assert list_bucket_mismatch("5.2.6", "AccessDenied", "Access Denied") == (
        "the embedded S3 server (moto 5.2.6) evaluates ListObjectsV2 as the IAM action s3:ListObjectsV2, "
        "not s3:ListBucket as AWS does, so every IAM-enforcing test would fail: pin moto[server] in "
        "pyproject.toml's demo extra to a release that behaves like AWS and run `make lock`"
    )


def test_another_refusal_is_named_with_its_code_and_message() -> None:
    message = list_bucket_mismatch("5.2.3", "SignatureDoesNotMatch", "The request signature we calculated")
    assert message.startswith(
        "the embedded S3 server (moto 5.2.3) refuses ListObjectsV2 by a user allowed s3:ListBucket "
        "(SignatureDoesNotMatch: The request signature we calculated), so every IAM-enforcing test would fail"
    )

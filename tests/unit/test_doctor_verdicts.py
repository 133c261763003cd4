"""``s3csi doctor``'s decisions: which fix for which failure, and how each result line reads."""

from __future__ import annotations

import pytest

from s3csi.doctor.verdicts import (
    PROBE_KEY_EXISTS,
    Failure,
    Outcome,
    Step,
    StepResult,
    VolumeFacts,
    fix_for,
)
from s3csi.volume.context import AuthenticationSource

FACTS = VolumeFacts("data", "team/", "eu-west-1", AuthenticationSource.DRIVER)
WHOLE_BUCKET = VolumeFacts("data", "", "eu-west-1", AuthenticationSource.DRIVER)
SECRET = VolumeFacts("data", "team/", "eu-west-1", AuthenticationSource.SECRET)
POD = VolumeFacts("data", "team/", "eu-west-1", AuthenticationSource.POD)

# (failure, facts, a phrase the fix must hold)
CASES = [
    # options: where the offending entry lives
    (
        Failure(Step.OPTIONS, "InvalidArgument", message="mount option --endpoint-url is not allowed"),
        FACTS,
        "PV's mountOptions",
    ),
    (
        Failure(Step.OPTIONS, "InvalidArgument", message="volume capability access mode X is not supported"),
        FACTS,
        "spec.accessModes",
    ),
    (
        Failure(Step.OPTIONS, "InvalidArgument", message="volume attribute prefix must be a key prefix"),
        FACTS,
        "PV's volumeAttributes",
    ),
    (
        Failure(Step.OPTIONS, "InvalidArgument", message="secrets: authenticationSource secret needs"),
        SECRET,
        "--secret-file FILE",
    ),
    (
        Failure(
            Step.OPTIONS,
            "InvalidArgument",
            message="volume_context: authenticationSource pod needs csi.storage.k8s.io/serviceAccount.tokens",
        ),
        POD,
        "--service-account-token-file",
    ),
    # endpoint: by what happened below HTTP
    (Failure(Step.ENDPOINT, "ConnectionError", "HeadBucket"), FACTS, "--s3-endpoint-url or AWS_ENDPOINT_URL"),
    (Failure(Step.ENDPOINT, "ConnectionLost", "HeadBucket"), FACTS, "the S3 service is running"),
    (Failure(Step.ENDPOINT, "Timeout", "HeadBucket"), FACTS, "firewalls, network policies and proxies"),
    (Failure(Step.ENDPOINT, "TLSError", "HeadBucket"), FACTS, "AWS_CA_BUNDLE"),
    # endpoint: S3's endpoint rules refuse the bucket with these settings (no request sent)
    (
        Failure(
            Step.ENDPOINT,
            "InvalidArgument",
            message="cannot address bucket 'arn:…': S3 Outposts does not support FIPS",
        ),
        FACTS,
        "the node plugin's (AWS_USE_FIPS_ENDPOINT, --s3-endpoint-url or AWS_ENDPOINT_URL)",
    ),
    (
        Failure(
            Step.ENDPOINT,
            "InvalidArgument",
            message="cannot address bucket 'data': A custom endpoint cannot be combined with S3 Accelerate",
        ),
        FACTS,
        "PV's mountOptions (--transfer-acceleration",
    ),
    # credentials: S3's codes, by source
    (
        Failure(Step.CREDENTIALS, "InvalidAccessKeyId", "ListObjectsV2"),
        FACTS,
        "does not know the access key id: give the node plugin working keys",
    ),
    (Failure(Step.CREDENTIALS, "InvalidAccessKeyId", "ListObjectsV2"), SECRET, "nodePublishSecretRef"),
    (
        Failure(Step.CREDENTIALS, "SignatureDoesNotMatch", "ListObjectsV2"),
        FACTS,
        "secret access key does not belong to the access key id",
    ),
    (Failure(Step.CREDENTIALS, "SignatureDoesNotMatch", "ListObjectsV2"), SECRET, "--secret-file"),
    (Failure(Step.CREDENTIALS, "ExpiredToken", "ListObjectsV2"), FACTS, "session token has expired"),
    (Failure(Step.CREDENTIALS, "TokenRefreshRequired", "ListObjectsV2"), FACTS, "session token has expired"),
    (Failure(Step.CREDENTIALS, "InvalidToken", "ListObjectsV2"), FACTS, "malformed or belongs to other keys"),
    (
        Failure(Step.CREDENTIALS, "PermissionDenied", message="no AWS credentials found"),
        FACTS,
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    ),
    (Failure(Step.CREDENTIALS, "CredentialsDenied", "AssumeRoleWithWebIdentity"), POD, "trust policy"),
    (Failure(Step.CREDENTIALS, "CredentialsUnavailable"), POD, "did not answer"),
    # bucket
    (Failure(Step.BUCKET, "NotFound", "HeadBucket"), FACTS, "create the bucket data, or correct"),
    (Failure(Step.BUCKET, "NoSuchBucket", "HeadBucket"), FACTS, "volumeAttributes.bucketName"),
    (Failure(Step.BUCKET, "PermanentRedirect", "HeadBucket"), FACTS, "not in eu-west-1: set its region"),
    (Failure(Step.BUCKET, "AuthorizationHeaderMalformed", "HeadBucket"), FACTS, "--region=REGION"),
    (Failure(Step.BUCKET, "AccessDenied", "HeadBucket"), FACTS, "allow s3:ListBucket on arn:aws:s3:::data "),
    # prefix: the condition only when there is a prefix
    (Failure(Step.PREFIX, "AccessDenied", "ListObjectsV2"), FACTS, "with the condition s3:prefix team/*"),
    (
        Failure(Step.PREFIX, "AccessDenied", "ListObjectsV2"),
        WHOLE_BUCKET,
        "allow s3:ListBucket on arn:aws:s3:::data for these credentials",
    ),
    (Failure(Step.PREFIX, "PermanentRedirect", "ListObjectsV2"), FACTS, "--region=REGION"),
    # write: by the call that failed
    (
        Failure(Step.WRITE, "AccessDenied", "PutObject"),
        FACTS,
        "cannot write: allow s3:PutObject on arn:aws:s3:::data/team/*, or mount the volume read-only",
    ),
    (Failure(Step.WRITE, "AccessDenied", "DeleteObject"), FACTS, "then delete the probe object"),
    (
        Failure(Step.WRITE, "AccessDenied", "HeadObject"),
        FACTS,
        "allow s3:GetObject on arn:aws:s3:::data/team/*",
    ),
    (Failure(Step.WRITE, PROBE_KEY_EXISTS, "HeadObject"), FACTS, "never overwrites"),
    (Failure(Step.WRITE, "KMS.AccessDeniedException", "PutObject"), FACTS, "kms:GenerateDataKey"),
    # transient answers, at any step but the endpoint's own timeout
    (Failure(Step.BUCKET, "SlowDown", "HeadBucket"), FACTS, "transient error: run doctor again"),
    (Failure(Step.WRITE, "InternalError", "PutObject"), FACTS, "transient error"),
    (Failure(Step.PREFIX, "Timeout", "ListObjectsV2"), FACTS, "transient error"),
]


@pytest.mark.parametrize(("failure", "facts", "phrase"), CASES)
def test_fix_for(failure: Failure, facts: VolumeFacts, phrase: str) -> None:
    assert phrase in fix_for(failure, facts)


def test_every_step_has_a_case() -> None:
    assert {failure.step for failure, _, _ in CASES} == set(Step)


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (StepResult(Step.BUCKET, Outcome.PASS, "s3://data exists"), "PASS bucket: s3://data exists"),
        (StepResult(Step.WRITE, Outcome.SKIP, "read-only"), "SKIP write: read-only"),
        (StepResult(Step.WRITE, Outcome.SKIP, "read-only", "ignored"), "SKIP write: read-only"),
        (
            StepResult(Step.PREFIX, Outcome.FAIL, "AccessDenied", "allow it"),
            "FAIL prefix: AccessDenied — fix: allow it",
        ),
    ],
)
def test_line(result: StepResult, line: str) -> None:
    assert result.line() == line

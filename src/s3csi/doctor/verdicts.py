"""What ``s3csi doctor`` says about each step: the result lines and, for a failure, the fix — pure.

A check (:mod:`s3csi.doctor.checks`) describes what went wrong as a :class:`Failure`: the step, the
operation that failed and the code of the answer (S3's error code, ``ConnectionError``/``Timeout``/
``TLSError`` below HTTP, or the class of an s3csi error such as ``InvalidArgument``).
:func:`fix_for` turns it into the advice printed after "fix:"; the table of every case is in
tests/unit/test_doctor_verdicts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from s3csi.volume.context import AuthenticationSource


class Step(StrEnum):
    """The steps, in the order they run: each needs the ones before it to have passed."""

    OPTIONS = "options"
    ENDPOINT = "endpoint"
    CREDENTIALS = "credentials"
    BUCKET = "bucket"
    PREFIX = "prefix"
    WRITE = "write"


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class StepResult:
    step: Step
    outcome: Outcome
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``PASS step: detail``, ``SKIP step: why`` or ``FAIL step: what was wrong — fix: …``."""
        text = f"{self.outcome.value} {self.step.value}: {self.detail}"
        return f"{text} — fix: {self.fix}" if self.outcome is Outcome.FAIL else text


@dataclass(frozen=True)
class VolumeFacts:
    """What the advice names: the volume as the mount would use it."""

    bucket: str
    prefix: str
    """"" for the whole bucket, else ending in "/"."""
    region: str
    authentication_source: AuthenticationSource


@dataclass(frozen=True)
class Failure:
    step: Step
    code: str
    operation: str = ""
    """The S3 or STS call that failed ("PutObject", "DeleteObject"…); "" when none was sent."""
    message: str = ""
    """The error's own text (already free of secrets): some fixes depend on what it names."""


CONNECTION_CODES = frozenset({"ConnectionError", "ConnectionLost"})
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
"""S3's answers that mean the signature or the keys behind it were refused (not a missing permission)."""
REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
BUCKET_CODES = frozenset({"NoSuchBucket", "NotFound", "MovedPermanently"}) | REGION_CODES
"""Answers that say the bucket is not there (or not in this region)."""
TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "Timeout"}
)
PROBE_KEY_EXISTS = "ProbeKeyExists"
"""Not S3's: the probe's randomly named key already holds an object, which doctor never overwrites."""

_SECRET_FIX = {
    AuthenticationSource.DRIVER: (
        "give the node plugin working keys (the chart's driver secret as AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, a shared credentials file, web identity or instance metadata: "
        "docs/credentials.md); doctor reads them from its own environment as the node plugin does"
    ),
    AuthenticationSource.SECRET: (
        "correct access_key_id/secret_access_key in the PV's nodePublishSecretRef secret "
        "(the file given to --secret-file)"
    ),
    AuthenticationSource.POD: (
        "check the role the pod assumes (roleArn or the service account's eks.amazonaws.com/role-arn) "
        "and that its trust policy admits the service account (docs/credentials.md)"
    ),
}


def _arn(facts: VolumeFacts, objects: bool) -> str:
    return f"arn:aws:s3:::{facts.bucket}/{facts.prefix}*" if objects else f"arn:aws:s3:::{facts.bucket}"


def _options_fix(failure: Failure) -> str:
    message = failure.message
    if message.startswith("secrets"):
        return (
            "give doctor the PV's nodePublishSecretRef secret: "
            "--secret-file FILE (kubectl get secret NAME -o yaml)"
        )
    if "authenticationSource pod" in message:
        return (
            "give doctor a token of the pod's service account (--service-account-token-file) and the role "
            "(volumeAttributes.roleArn)"
        )
    if message.startswith("mount option"):
        return (
            "remove or correct that entry of the PV's mountOptions (the allowed ones: docs/mount-options.md)"
        )
    if message.startswith("volume capability"):
        return "give the PV the access mode ReadWriteOnce, ReadWriteMany or ReadOnlyMany (spec.accessModes)"
    return "correct that field of the PV's volumeAttributes (docs/mount-options.md, docs/credentials.md)"


def _endpoint_fix(failure: Failure) -> str:
    if failure.code == "InvalidArgument":
        return (
            "drop the setting the message names: a mount option in the PV's mountOptions "
            "(--transfer-acceleration, --dual-stack, --force-path-style) or the node plugin's "
            "(AWS_USE_FIPS_ENDPOINT, --s3-endpoint-url or AWS_ENDPOINT_URL), or use a bucket name, access "
            "point or alias those settings can address (volumeAttributes.bucketName; docs/mount-options.md)"
        )
    if failure.code == "TLSError":
        return "trust the endpoint's certificate: set AWS_CA_BUNDLE to its CA, as the node plugin's is set"
    if failure.code == "Timeout":
        return (
            "nothing answered in time: check firewalls, network policies and proxies between the node and "
            "the endpoint"
        )
    return (
        "check the endpoint URL and port the node plugin uses (--s3-endpoint-url or AWS_ENDPOINT_URL; "
        "the chart's s3.endpointUrl), its DNS name, and that the S3 service is running"
    )


def _credentials_fix(failure: Failure, facts: VolumeFacts) -> str:
    code = failure.code
    if code == "InvalidAccessKeyId":
        return f"this endpoint does not know the access key id: {_SECRET_FIX[facts.authentication_source]}"
    if code == "SignatureDoesNotMatch":
        return (
            "the secret access key does not belong to the access key id (or the region differs from the "
            f"one S3 signs for): {_SECRET_FIX[facts.authentication_source]}"
        )
    if code in ("ExpiredToken", "TokenRefreshRequired"):
        return "the session token has expired: get new temporary credentials (a new session token)"
    if code == "InvalidToken":
        return "the session token is malformed or belongs to other keys: use the one issued with these keys"
    if code == "CredentialsUnavailable":
        return "the credentials source (STS, instance metadata) did not answer: check it is reachable"
    return _SECRET_FIX[facts.authentication_source]


def _bucket_fix(failure: Failure, facts: VolumeFacts) -> str:
    if failure.code in ("NoSuchBucket", "NotFound"):
        return f"create the bucket {facts.bucket}, or correct volumeAttributes.bucketName"
    if failure.code in REGION_CODES or failure.code == "MovedPermanently":
        return (
            f"the bucket is not in {facts.region}: set its region with the mount option --region=REGION "
            "(or the node plugin's --s3-region)"
        )
    return f"allow s3:ListBucket on {_arn(facts, objects=False)} for these credentials"


def _prefix_fix(facts: VolumeFacts) -> str:
    where = f" with the condition s3:prefix {facts.prefix}*" if facts.prefix else ""
    return (
        f"allow s3:ListBucket on {_arn(facts, objects=False)}{where} for these credentials, and check that "
        f"the bucket {facts.bucket} exists"
    )


def _write_fix(failure: Failure, facts: VolumeFacts) -> str:
    if failure.code == PROBE_KEY_EXISTS:
        return "run doctor again: it picks a new random probe name and never overwrites an object"
    if failure.code.startswith("KMS."):
        return "allow kms:GenerateDataKey and kms:Decrypt on the --sse-kms-key-id key for these credentials"
    if failure.operation == "HeadObject":
        return f"allow s3:GetObject on {_arn(facts, objects=True)}: a mount reads what it lists"
    if failure.operation == "DeleteObject":
        return (
            f"allow s3:DeleteObject on {_arn(facts, objects=True)} (a mount with --allow-delete needs it "
            "too), then delete the probe object named above"
        )
    return (
        f"these credentials cannot write: allow s3:PutObject on {_arn(facts, objects=True)}, or mount the "
        "volume read-only (PV spec.csi.readOnly: true, accessModes ReadOnlyMany, or the mount option "
        "--read-only)"
    )


def fix_for(failure: Failure, facts: VolumeFacts) -> str:
    """The advice for ``failure``: what to change, and where."""
    if failure.code in TRANSIENT_CODES - {"Timeout"} or (
        failure.code == "Timeout" and failure.step is not Step.ENDPOINT
    ):
        return "S3 answered with a transient error: run doctor again; if it persists, check the S3 service"
    if failure.step is Step.OPTIONS:
        return _options_fix(failure)
    if failure.step is Step.ENDPOINT:
        return _endpoint_fix(failure)
    if failure.step is Step.CREDENTIALS:
        return _credentials_fix(failure, facts)
    if failure.step is Step.BUCKET:
        return _bucket_fix(failure, facts)
    if failure.step is Step.PREFIX:
        if failure.code in REGION_CODES:
            return _bucket_fix(failure, facts)
        return _prefix_fix(facts)
    return _write_fix(failure, facts)

"""The S3 region of a mount that names none, as mount-s3 finds it ("AWS region of the bucket [default:
auto-detect]").

Without ``--region``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` the client starts from the instance's region
(IMDSv2, on AWS only: not with ``--endpoint-url``), else us-east-1 (:func:`starting_region`). A bucket in
another region answers its first request with the region it is in: a 301 ``PermanentRedirect`` (the
``x-amz-bucket-region`` header, and ``<Region>`` in the body), or a 400 ``AuthorizationHeaderMalformed``
whose body names the region the signature should have had. The client then re-resolves the bucket's
endpoint for that region and sends the request again, once (:func:`on_redirect` decides). A region that was
given is never changed: S3's answer becomes the error, which names the bucket's region.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from enum import Enum

from s3csi.mountflags import REGION_PATTERN
from s3csi.s3.errors import code_for_status
from s3csi.s3.imds import instance_region, metadata_endpoint
from s3csi.s3.settings import DEFAULT_REGION, S3Settings

log = logging.getLogger(__name__)

# Answers from the wrong region, as botocore's S3 region redirector takes them: a redirect status (301
# PermanentRedirect; 302 and 307), a code saying so whatever the status, or a HEAD's 400, which has no body
# (so no code but the one code_for_status gives it), only the x-amz-bucket-region header.
REDIRECT_STATUSES = frozenset({301, 302, 307})
REDIRECT_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
# The bucket does not exist yet: its region is the one it is created in, never S3's answer.
NO_DETECTION_OPERATIONS = frozenset({"CreateBucket"})


class Redirect(Enum):
    """What a request does with an answer from the wrong region."""

    RAISE = "raise"  # the answer is the request's error
    SWITCH = "switch"  # switch the bucket to the region S3 named, then send the request again
    RETRY = "retry"  # another request switched the bucket meanwhile: send again to its new endpoint


def detected_region(status: int | None, code: str, named: str | None) -> str | None:
    """The bucket's region when S3's answer (``status``, error ``code``, and ``named``: the body's
    ``<Region>``, else the ``x-amz-bucket-region`` header) says the request went to the wrong region; None
    otherwise, or when what it names is not a region name (a broken or hostile store)."""
    if named is None or not REGION_PATTERN.fullmatch(named):
        return None
    if (
        code in REDIRECT_CODES
        or status in REDIRECT_STATUSES
        or (status == 400 and code == code_for_status(400))
    ):
        return named
    return None


def on_redirect(
    region: str | None,
    *,
    operation: str,
    detect: bool,
    sent_region: str,
    switched: bool,
    endpoint_changed: bool,
    redirected: bool,
) -> Redirect:
    """What to do with an answer naming the bucket's ``region`` (:func:`detected_region`).

    ``detect``: the mount's region was not given. ``sent_region``: the region the request was signed for.
    ``switched``: this bucket has already been switched once. ``endpoint_changed``: the bucket's endpoint
    is no longer the one this request was sent to. ``redirected``: this request was already sent again
    after such an answer. Each request follows one redirect at most, each bucket switches once: never a loop.
    """
    if region is None or not detect or redirected or operation in NO_DETECTION_OPERATIONS:
        return Redirect.RAISE
    if endpoint_changed:
        return Redirect.RETRY
    if switched or region == sent_region:
        return Redirect.RAISE
    return Redirect.SWITCH


async def starting_region(settings: S3Settings, env: Mapping[str, str]) -> S3Settings:
    """``settings`` with the region to start from when none was given (``settings.detect_region``): on AWS
    (no endpoint URL) the instance's, from IMDSv2 within its short timeouts, else us-east-1. Logs where
    the region came from. Off EC2 nothing answers: the mount goes on in us-east-1 and finds the bucket's
    region from S3's first answer."""
    if not settings.detect_region:
        return settings
    if settings.endpoint_url is not None:
        log.info(
            "S3 region %s: no --region, AWS_REGION or AWS_DEFAULT_REGION (with --endpoint-url the instance"
            " metadata service is not asked); a bucket elsewhere is followed to the region S3 names",
            settings.region,
        )
        return settings
    endpoint = metadata_endpoint(env)
    found = await instance_region(endpoint) if endpoint is not None else None
    if found is not None:
        log.info(
            "S3 region %s from the instance metadata service (no --region, AWS_REGION or AWS_DEFAULT_REGION)",
            found,
        )
        return dataclasses.replace(settings, region=found)
    why = "is disabled (AWS_EC2_METADATA_DISABLED)" if endpoint is None else "gave no region"
    log.info(
        "S3 region %s by default: no --region, AWS_REGION or AWS_DEFAULT_REGION, and the instance metadata"
        " service %s; a bucket elsewhere is followed to the region S3 names",
        DEFAULT_REGION,
        why,
    )
    return dataclasses.replace(settings, region=DEFAULT_REGION)

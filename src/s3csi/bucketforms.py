"""What may stand where a bucket is named (``s3csi mount BUCKET``, the volume attribute ``bucketName``).

Five forms, as mount-s3 and the Mountpoint CSI driver take them: a bucket name (general purpose, or a
directory bucket ``NAME--ZONE-ID--x-s3``), an access point ARN or alias, and an Outposts access point ARN or
alias. Anything else (a bucket ARN, a Multi-Region Access Point, an Object Lambda access point) is refused
here, naming the forms expected, before any request is made. Pure: the S3 endpoint rules
(``s3/endpoints.py``) then decide where each form's requests go.
"""

from __future__ import annotations

import re
from enum import StrEnum

from s3csi.errors import InvalidArgument


class BucketForm(StrEnum):
    BUCKET = "bucket name"
    DIRECTORY_BUCKET = "directory bucket name"
    ACCESS_POINT_ARN = "access point ARN"
    ACCESS_POINT_ALIAS = "access point alias"
    OUTPOSTS_ACCESS_POINT_ARN = "Outposts access point ARN"
    OUTPOSTS_ACCESS_POINT_ALIAS = "Outposts access point alias"


EXPECTED_FORMS = (
    "use a bucket name, an access point ARN (arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME) or alias"
    " (…-s3alias), or an Outposts access point ARN or alias (…--op-s3)"
)

# AWS's rules for new general-purpose buckets; aliases and directory bucket names follow them too.
_STRICT_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# What S3-compatible stores and old us-east-1 buckets may still have: upper case, '_', up to 255.
_LEGACY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_IPV4_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_PARTITION_REGION_ACCOUNT = r"arn:aws[a-z-]*:{service}:[a-z0-9-]+:[0-9]{{12}}:"
_ACCESS_POINT_NAME = r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]"
_ACCESS_POINT_ARN = re.compile(
    _PARTITION_REGION_ACCOUNT.format(service="s3") + rf"accesspoint[/:]{_ACCESS_POINT_NAME}"
)
_OUTPOSTS_ARN = re.compile(
    _PARTITION_REGION_ACCOUNT.format(service="s3-outposts")
    + rf"outpost[/:]op-[0-9a-f]{{17}}[/:]accesspoint[/:]{_ACCESS_POINT_NAME}"
)


def bucket_form(name: str, *, what: str, legacy_names: bool = False) -> BucketForm:
    """The form of ``name``, or InvalidArgument saying ``what`` (``BUCKET``, ``volume attribute bucketName``)
    was wrong and listing the forms expected. ``legacy_names`` also takes names AWS no longer creates
    (upper case, '_'), which S3-compatible stores may have."""
    if name.startswith("arn:"):
        if _ACCESS_POINT_ARN.fullmatch(name):
            return BucketForm.ACCESS_POINT_ARN
        if _OUTPOSTS_ARN.fullmatch(name):
            return BucketForm.OUTPOSTS_ACCESS_POINT_ARN
        raise _refused(name, what, "not an access point ARN")
    problem = _name_problem(name, legacy_names=legacy_names)
    if problem is not None:
        raise _refused(name, what, problem)
    if name.endswith("--x-s3"):
        return BucketForm.DIRECTORY_BUCKET
    if name.endswith("-s3alias"):
        return BucketForm.ACCESS_POINT_ALIAS
    if name.endswith("--op-s3"):
        return BucketForm.OUTPOSTS_ACCESS_POINT_ALIAS
    return BucketForm.BUCKET


def _name_problem(name: str, *, legacy_names: bool) -> str | None:
    if legacy_names and _LEGACY_NAME.fullmatch(name):
        return None
    if not _STRICT_NAME.fullmatch(name):
        return "3-63 of a-z0-9.-, alphanumeric at both ends"
    if ".." in name or ".-" in name or "-." in name:
        return "no adjacent '.', '.-' or '-.'"
    if _IPV4_LIKE.fullmatch(name):
        return "not formatted as an IP address"
    if name.startswith("xn--"):
        return "not starting with 'xn--'"
    return None


def _refused(name: str, what: str, problem: str) -> InvalidArgument:
    shown = repr(name if len(name) <= 32 else name[:29] + "...")
    return InvalidArgument(f"{what} {shown} is not a valid bucket name ({problem}): {EXPECTED_FORMS}")

"""The decisions of s3/region.py: which answers name the bucket's region, and when a request follows them."""

from __future__ import annotations

from typing import Any

import pytest

from s3csi.csi.settings import driver_s3_settings
from s3csi.s3.region import Redirect, detected_region, on_redirect
from s3csi.s3.settings import S3Settings


@pytest.mark.parametrize(
    ("status", "code", "named", "region"),
    [
        # S3's PermanentRedirect, with a body (GET) or without (HEAD: the code comes from the status).
        (301, "PermanentRedirect", "eu-west-3", "eu-west-3"),
        (307, "TemporaryRedirect", "eu-west-3", "eu-west-3"),
        (302, "Found", "eu-west-3", "eu-west-3"),
        # A signature scoped to another region: the body's <Region>.
        (400, "AuthorizationHeaderMalformed", "eu-west-3", "eu-west-3"),
        (400, "IllegalLocationConstraintException", "ap-east-1", "ap-east-1"),
        # A HEAD's 400 has no body: the header alone.
        (400, "BadRequest", "eu-west-3", "eu-west-3"),
        # Answers that carry the header for other reasons (HeadBucket's 403, a 400 of a bad request).
        (403, "AccessDenied", "eu-west-3", None),
        (400, "InvalidRequest", "eu-west-3", None),
        (404, "NoSuchBucket", "eu-west-3", None),
        (200, "", "eu-west-3", None),
        # No region named, or something that is not a region name (a hostile or broken store).
        (301, "PermanentRedirect", None, None),
        (301, "PermanentRedirect", "", None),
        (301, "PermanentRedirect", "eu-west-3/../x", None),
        (400, "AuthorizationHeaderMalformed", "EU-WEST-3", None),
        (301, "PermanentRedirect", "a" * 65, None),
        # Below HTTP: no status.
        (None, "ConnectionError", None, None),
    ],
)
def test_which_answers_name_the_bucket_region(
    status: int | None, code: str, named: str | None, region: str | None
) -> None:
    assert detected_region(status, code, named) == region


FIRST: dict[str, Any] = {
    "operation": "ListObjectsV2",
    "detect": True,
    "sent_region": "us-east-1",
    "switched": False,
    "endpoint_changed": False,
    "redirected": False,
}


@pytest.mark.parametrize(
    ("region", "changes", "action"),
    [
        # The first answer naming another region: switch and send again.
        ("eu-west-3", {}, Redirect.SWITCH),
        # Nothing named: the answer stands.
        (None, {}, Redirect.RAISE),
        # A region that was given (flag, AWS_REGION) is never changed.
        ("eu-west-3", {"detect": False}, Redirect.RAISE),
        # A bucket's region is the one it is created in.
        ("eu-west-3", {"operation": "CreateBucket"}, Redirect.RAISE),
        # Another request switched the bucket while this one was out: again, to the new endpoint.
        ("eu-west-3", {"endpoint_changed": True}, Redirect.RETRY),
        ("eu-west-3", {"endpoint_changed": True, "switched": True}, Redirect.RETRY),
        # Already sent again once: the second answer stands (never a loop).
        ("eu-west-3", {"redirected": True}, Redirect.RAISE),
        ("eu-west-3", {"redirected": True, "endpoint_changed": True}, Redirect.RAISE),
        # The bucket was switched, and its new region redirects too: the answer stands.
        ("eu-west-3", {"switched": True, "sent_region": "eu-west-3"}, Redirect.RAISE),
        ("ap-east-1", {"switched": True, "sent_region": "eu-west-3"}, Redirect.RAISE),
        # The answer names the region the request was signed for: switching would change nothing.
        ("us-east-1", {}, Redirect.RAISE),
    ],
)
def test_when_a_request_follows_the_region_s3_names(
    region: str | None, changes: dict[str, Any], action: Redirect
) -> None:
    assert on_redirect(region, **{**FIRST, **changes}) is action


@pytest.mark.parametrize(
    ("env", "overrides", "region", "detect"),
    [
        ({}, {}, "us-east-1", True),
        ({}, {"region": None}, "us-east-1", True),
        # An empty variable is not a region (as the SDKs read it).
        ({"AWS_REGION": ""}, {}, "us-east-1", True),
        ({"AWS_REGION": "eu-west-1"}, {}, "eu-west-1", False),
        ({"AWS_DEFAULT_REGION": "eu-west-2"}, {}, "eu-west-2", False),
        ({}, {"region": "us-east-1"}, "us-east-1", False),
        ({"AWS_REGION": "eu-west-1"}, {"region": "ca-central-1"}, "ca-central-1", False),
        # With an S3-compatible store too: its answers may name the bucket's region as well.
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}, {}, "us-east-1", True),
    ],
)
def test_a_region_is_detected_only_when_none_was_given(
    env: dict[str, str], overrides: dict[str, Any], region: str, detect: bool
) -> None:
    settings = S3Settings.from_env(env, **overrides)
    assert (settings.region, settings.detect_region) == (region, detect)


def test_settings_built_directly_keep_their_region() -> None:
    assert S3Settings().detect_region is False
    assert S3Settings(region="eu-west-1").detect_region is False


@pytest.mark.parametrize(
    ("env", "flag", "detect"),
    [
        ({}, None, True),
        ({"AWS_REGION": "eu-west-1"}, None, False),
        ({}, "eu-west-1", False),
    ],
)
def test_the_controller_follows_s3_when_the_driver_has_no_region(
    env: dict[str, str], flag: str | None, detect: bool
) -> None:
    """CreateVolume and DeleteVolume use the driver's settings (--s3-region, AWS_REGION)."""
    settings = driver_s3_settings(env, region=flag, endpoint_url="http://127.0.0.1:9000")
    assert settings.detect_region is detect

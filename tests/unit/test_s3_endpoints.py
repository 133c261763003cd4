"""Endpoint resolution against botocore's own S3 client: for each bucket form, region and endpoint variant,
the URL, signing name and signing region s3csi resolves are the ones botocore puts on a GetObject request
(captured just before sending), and a combination botocore refuses is refused here too."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from s3csi.bucketforms import EXPECTED_FORMS, BucketForm, bucket_form
from s3csi.errors import InvalidArgument
from s3csi.s3.client import S3Client
from s3csi.s3.endpoints import BucketType, EndpointInputs, resolve
from s3csi.s3.settings import S3Settings
from s3csi.volume.context import VolumeContext, validate_bucket_name

KEY = "dir/a b+ü"
ACCESS_POINT_ARN = "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap"
ACCESS_POINT_ALIAS = "my-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias"
OUTPOSTS_ARN = "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/my-ap"
OUTPOSTS_ALIAS = "my-access-po-o01ac5d28a6a232904e8xz5w8ijx1qzlbp3i3kuse10--op-s3"
DIRECTORY_BUCKET = "my-bucket--usw2-az1--x-s3"
BUCKETS = [
    "my-bucket",
    "my.dotted.bucket",
    ACCESS_POINT_ARN,
    ACCESS_POINT_ALIAS,
    OUTPOSTS_ARN,
    OUTPOSTS_ALIAS,
    DIRECTORY_BUCKET,
]
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "fips": {"use_fips": True},
    "dual-stack": {"dual_stack": True},
    "accelerate": {"accelerate": True},
    "path-style": {"force_path_style": True},
    "custom-endpoint": {"endpoint_url": "https://s3.example.com"},
    "custom-endpoint-path-style": {"endpoint_url": "http://minio.example.com:9000", "force_path_style": True},
}
REGIONS = ["us-east-1", "eu-west-1"]
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class _Sent(Exception):
    """Raised by the before-send hook: the request is captured, never sent."""


_SESSION = botocore.session.Session()


_CLIENTS: dict[tuple[str, str], Any] = {}


def _client(region: str, variant: dict[str, Any]) -> Any:
    """One botocore client per region and variant (making one costs more than the requests)."""
    key = (region, repr(sorted(variant.items())))
    if key not in _CLIENTS:
        _CLIENTS[key] = _new_client(region, variant)
    return _CLIENTS[key]


def _new_client(region: str, variant: dict[str, Any]) -> Any:
    s3_config: dict[str, Any] = {
        "us_east_1_regional_endpoint": "regional",
        "use_arn_region": True,
        # botocore's "auto" means path-style on a custom endpoint; mount-s3 and s3csi mean the rule set's
        # default, virtual-hosted where the name allows: "virtual" is that input in botocore's terms.
        "addressing_style": "path" if variant.get("force_path_style") else "virtual",
        "use_dualstack_endpoint": variant.get("dual_stack", False),
        "use_accelerate_endpoint": variant.get("accelerate", False),
        # The data request itself (the session keys of a directory bucket are another helper's call).
        "disable_s3_express_session_auth": True,
    }
    return _SESSION.create_client(
        "s3",
        region_name=region,
        endpoint_url=variant.get("endpoint_url"),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(use_fips_endpoint=variant.get("use_fips", False), s3=s3_config),
    )


def _botocore_request(bucket: str, region: str, variant: dict[str, Any]) -> tuple[str, str, str]:
    """(URL, signing name, signing region) of the GetObject botocore would send for the same input."""
    client = _client(region, variant)
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        sent["url"] = request.url
        sent["authorization"] = request.headers["Authorization"].decode()
        raise _Sent

    client.meta.events.register("before-send.s3", capture, unique_id="capture")
    try:
        with pytest.raises(_Sent):
            client.get_object(Bucket=bucket, Key=KEY)
    finally:
        client.meta.events.unregister("before-send.s3", unique_id="capture")
    scope = _SCOPE.search(sent["authorization"])
    assert scope is not None
    return sent["url"], scope.group(2), scope.group(1)


def _cases() -> list[Any]:
    return [
        pytest.param(bucket, region, variant, id=f"{bucket[:24]}-{region}-{name}")
        for bucket in BUCKETS
        for region in REGIONS
        for name, variant in VARIANTS.items()
    ]


@pytest.mark.parametrize(("bucket", "region", "variant"), _cases())
def test_resolution_matches_botocores_request(bucket: str, region: str, variant: dict[str, Any]) -> None:
    inputs = EndpointInputs(region=region, **variant)
    try:
        expected = _botocore_request(bucket, region, variant)
    except Exception as refused:  # botocore refuses the combination (Outposts with FIPS, …): so do we
        with pytest.raises(InvalidArgument):
            resolve(bucket, inputs)
        assert str(refused)
        return
    endpoint = resolve(bucket, inputs)
    url = endpoint.url(KEY)
    assert (url, endpoint.signing_name, endpoint.signing_region) == expected


@pytest.mark.parametrize(
    ("bucket", "signing_name", "bucket_type"),
    [
        ("my-bucket", "s3", BucketType.GENERAL_PURPOSE),
        (ACCESS_POINT_ARN, "s3", BucketType.GENERAL_PURPOSE),
        (OUTPOSTS_ARN, "s3-outposts", BucketType.GENERAL_PURPOSE),
        (DIRECTORY_BUCKET, "s3express", BucketType.DIRECTORY),
    ],
)
def test_signing_name_and_bucket_type(bucket: str, signing_name: str, bucket_type: BucketType) -> None:
    endpoint = resolve(bucket, EndpointInputs(region="eu-west-1"))
    assert (endpoint.signing_name, endpoint.bucket_type) == (signing_name, bucket_type)
    # An access point ARN's own region wins over the mount's (as mount-s3 and the SDKs do).
    assert endpoint.signing_region == ("us-west-2" if bucket.startswith("arn:") else "eu-west-1")


def test_an_ip_or_single_label_endpoint_keeps_bucket_names_in_the_path() -> None:
    # s3csi's own choice, kept from before the rule set: botocore would put a dotted name in the host.
    for endpoint_url in ("http://127.0.0.1:9000", "http://localhost:9000"):
        endpoint = resolve("my.bucket", EndpointInputs("us-east-1", endpoint_url))
        assert endpoint.url("k") == f"{endpoint_url}/my.bucket/k"
    # An access point is never in the path: the rules refuse it.
    arn = resolve(ACCESS_POINT_ARN, EndpointInputs("us-east-1", "http://s3.test:9000"))
    assert arn.url("k") == "http://my-ap-123456789012.s3.test:9000/k"


def test_bucket_type_flag_against_the_name() -> None:
    on_aws = EndpointInputs("us-west-2", bucket_type=BucketType.DIRECTORY)
    with pytest.raises(InvalidArgument, match=r"--bucket-type directory.*NAME--ZONE-ID--x-s3"):
        resolve("my-bucket", on_aws)
    # A custom endpoint may serve a directory bucket under any name: signed as S3 Express.
    inputs = EndpointInputs("us-west-2", "http://127.0.0.1:1", bucket_type=BucketType.DIRECTORY)
    custom = resolve("plain", inputs)
    assert (custom.signing_name, custom.bucket_type) == ("s3express", BucketType.DIRECTORY)


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("my-bucket", BucketForm.BUCKET),
        ("my.bucket.example", BucketForm.BUCKET),
        (DIRECTORY_BUCKET, BucketForm.DIRECTORY_BUCKET),
        (ACCESS_POINT_ARN, BucketForm.ACCESS_POINT_ARN),
        ("arn:aws-cn:s3:cn-north-1:123456789012:accesspoint:ap1", BucketForm.ACCESS_POINT_ARN),
        (ACCESS_POINT_ALIAS, BucketForm.ACCESS_POINT_ALIAS),
        (OUTPOSTS_ARN, BucketForm.OUTPOSTS_ACCESS_POINT_ARN),
        (OUTPOSTS_ALIAS, BucketForm.OUTPOSTS_ACCESS_POINT_ALIAS),
        ("ab", None),
        ("My_Bucket", None),
        ("a..b", None),
        ("192.168.1.1", None),
        ("xn--bucket", None),
        ("arn:aws:s3:::my-bucket", None),  # a bucket ARN: give the name
        ("arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap", None),  # Multi-Region Access Point
        ("arn:aws:s3-object-lambda:us-west-2:123456789012:accesspoint/olap", None),
        ("arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/object/key", None),
        ("arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-0123/accesspoint/ap", None),
        ("my-bucket; rm -rf /", None),
    ],
)
def test_bucket_forms(text: str, form: BucketForm | None) -> None:
    if form is not None:
        assert bucket_form(text, what="BUCKET") is form
        return
    with pytest.raises(InvalidArgument) as refused:
        bucket_form(text, what="BUCKET")
    assert str(refused.value).startswith("BUCKET ") and EXPECTED_FORMS in str(refused.value)


def test_legacy_names_only_where_asked() -> None:
    assert bucket_form("Old_Bucket", what="BUCKET", legacy_names=True) is BucketForm.BUCKET
    with pytest.raises(InvalidArgument, match="volume attribute bucketName"):
        bucket_form("Old_Bucket", what="volume attribute bucketName")


@pytest.mark.parametrize("bucket", ["my-bucket", ACCESS_POINT_ARN, ACCESS_POINT_ALIAS])
def test_copy_source_is_botocores(bucket: str) -> None:
    source = f"{bucket}/object/{KEY}" if bucket.startswith("arn:") else f"{bucket}/{KEY}"
    client = _client("us-west-2", {})
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        sent["copy-source"] = request.headers["x-amz-copy-source"].decode()
        raise _Sent

    client.meta.events.register("before-send.s3", capture, unique_id="copy")
    try:
        with pytest.raises(_Sent):
            client.copy_object(Bucket=bucket, Key="to", CopySource=source)
    finally:
        client.meta.events.unregister("before-send.s3", unique_id="copy")
    s3 = S3Client(S3Settings(region="us-west-2", no_sign_request=True))
    assert s3._copy_source(bucket, KEY) == sent["copy-source"]


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_name_attribute_takes_every_form_provisioning_no_arn(bucket: str) -> None:
    assert VolumeContext.parse({"bucketName": bucket}).bucket_name == bucket
    if bucket.startswith("arn:"):
        with pytest.raises(InvalidArgument, match=r"bucketName .* an access point ARN"):
            validate_bucket_name(bucket)
    else:
        assert validate_bucket_name(bucket) == bucket


def test_bucket_name_attribute_refuses_other_forms() -> None:
    with pytest.raises(InvalidArgument, match=re.escape("volume attribute bucketName 'arn:aws:s3:::b'")):
        VolumeContext.parse({"bucketName": "arn:aws:s3:::b"})

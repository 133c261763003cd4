"""The label tables of the mounter's metrics (errno names, S3 error classes, the volume id of a mount made by
hand), and its histograms as Prometheus reads them."""

from __future__ import annotations

import errno

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from s3csi.fs.metrics import (
    ERROR_CLASSES,
    OTHER_ERRNO,
    Buckets,
    MounterMetrics,
    default_volume_id,
    errno_name,
    error_class,
)
from s3csi.fs.session import metrics_summary
from s3csi.s3.errors import make_error


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (errno.ENOENT, "ENOENT"),
        (errno.EACCES, "EACCES"),
        (errno.EPERM, "EPERM"),
        (errno.EIO, "EIO"),
        (errno.ENOTSUP, "ENOTSUP"),  # one value with two names on Linux: Python names it ENOTSUP
        (errno.ETIMEDOUT, "ETIMEDOUT"),
        (100_000, OTHER_ERRNO),
    ],
)
def test_errno_name(code: int, name: str) -> None:
    assert errno_name(code) == name


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("SlowDown", 503, "throttled"),
        ("Throttling", 400, "throttled"),
        ("TooManyRequests", 429, "throttled"),
        ("Timeout", None, "timeout"),
        ("RequestTimeout", 400, "timeout"),
        ("ConnectionError", None, "network"),
        ("ConnectionLost", None, "network"),
        ("TLSError", None, "network"),
        ("InternalError", 500, "server"),
        ("InternalError", 200, "server"),  # in the body of a 200 (CompleteMultipartUpload)
        ("ServiceUnavailable", 503, "server"),
        ("NotImplemented", 501, "server"),
        ("MalformedResponse", None, "server"),
        ("NoSuchKey", 404, "client"),
        ("AccessDenied", 403, "client"),
        ("PreconditionFailed", 412, "client"),
        ("InvalidAccessKeyId", 403, "client"),
        ("CredentialsUnavailable", None, "client"),  # nothing was sent
    ],
)
def test_error_class(code: str, status: int | None, kind: str) -> None:
    assert error_class(code, status) == kind
    assert kind in ERROR_CLASSES


@pytest.mark.parametrize(
    ("bucket", "prefix", "volume_id"),
    [("b", "", "b"), ("b", "team/", "b/team"), ("b", "a/b/", "b/a/b")],
)
def test_default_volume_id(bucket: str, prefix: str, volume_id: str) -> None:
    assert default_volume_id(bucket, prefix) == volume_id


def test_histogram_buckets_count_values_up_to_their_bound() -> None:
    buckets = Buckets((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 2.0, 7.0):
        buckets.observe(value)
    assert buckets.counts == [2, 2, 1]  # <= 1, (1, 2], +Inf
    assert buckets.sum == 12.0


def test_the_registry_exports_each_family_in_the_text_format() -> None:
    metrics = MounterMetrics("vol-1")
    metrics.succeeded("GetObject", 0.002, 0.3, 0, 4096)
    metrics.succeeded("ListObjectsV2", 0.001, 0.002, 0, 900)  # not object data
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
    }
    get = (("op", "GetObject"), ("volume_id", "vol-1"))
    assert samples["s3csi_s3_requests_total", get] == 1
    assert samples["s3csi_s3_request_total_latency_seconds_bucket", (("le", "0.25"), *get)] == 0
    assert samples["s3csi_s3_request_total_latency_seconds_bucket", (("le", "0.5"), *get)] == 1
    assert samples["s3csi_s3_request_total_latency_seconds_count", get] == 1
    download = (("direction", "download"), ("volume_id", "vol-1"))
    assert samples["s3csi_s3_transferred_bytes_total", download] == 4096
    assert samples["process_resident_memory_bytes", ()] > 0


def test_log_metrics_summarises_the_s3_counts_of_the_metrics() -> None:
    metrics = MounterMetrics("vol-1")
    assert (
        metrics_summary(metrics.s3_counts())
        == "metrics: requests none; failures none; sent 0 B; received 0 B"
    )
    metrics.succeeded("GetObject", 0.002, 0.3, 0, 4096)
    metrics.succeeded("ListObjectsV2", 0.001, 0.002, 0, 900)  # not object data
    metrics.succeeded("PutObject", 0.001, 0.002, 5, 0)
    failures = [
        ("HeadObject", "NoSuchKey", 404),
        ("GetObject", "SlowDown", 503),
        ("GetObject", "Timeout", None),
    ]
    for operation, code, status in failures:
        error = make_error(operation, code=code, message="", status=status, bucket="b", key="k")
        metrics.failed(operation, error, 0.001)
    assert metrics_summary(metrics.s3_counts()) == (
        "metrics: requests GetObject=3 HeadObject=1 ListObjectsV2=1 PutObject=1;"
        " failures GetObject=2 HeadObject=1; sent 5 B; received 4096 B"
    )

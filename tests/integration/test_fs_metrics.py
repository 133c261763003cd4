"""The mounter's metrics, scraped from a real mount (``s3csi mount --metrics-address unix:…``) while it works
against the test S3 server: each counter moves by exactly the work done, and the label sets stay bounded
however many files are touched."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests import metrics_support
from tests.integration.fs_helpers import MountedFs, mounted, world_readable_dir
from tests.metrics_support import Samples, scrape


def value(samples: Samples, name: str, **labels: str) -> float:
    return metrics_support.value(samples, name, volume_id=VOLUME_ID, **labels)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return metrics_support.delta(before, after, name, volume_id=VOLUME_ID, **labels)


BUCKET = f"metrics-{uuid.uuid4().hex[:12]}"
VOLUME_ID = f"{BUCKET}/data"  # a mount made by hand: bucket/prefix
# Above what a lookup fetches whole: the one GET is the open's.
TO_READ = os.urandom(300_000)


@pytest.fixture(scope="module")
def metrics_mount(s3_server: EmbeddedS3Server, s3: Any) -> Iterator[tuple[MountedFs, Path, str]]:
    bucket = BUCKET
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/fresh/to-read", Body=TO_READ)
    socket_dir = world_readable_dir("s3csi-metrics-")
    socket_path = socket_dir / "metrics.sock"
    flags = ("--prefix", "data/", "--allow-delete", "--metrics-address", f"unix:{socket_path}")
    with mounted(s3_server, bucket, *flags) as fs:
        yield fs, socket_path, bucket
    assert not socket_path.exists(), "the endpoint's socket outlived the mount"
    socket_dir.rmdir()


def test_writes_count_one_put_per_file_and_their_bytes(metrics_mount: tuple[MountedFs, Path, str]) -> None:
    fs, socket_path, _ = metrics_mount
    sizes = [1, 1000, 70_000, 5]
    before = scrape(socket_path)
    for number, size in enumerate(sizes):
        (fs.path / f"written-{number}").write_bytes(b"w" * size)
    after = scrape(socket_path)
    assert delta(before, after, "s3csi_s3_requests_total", op="PutObject") == len(sizes)
    assert delta(before, after, "s3csi_s3_transferred_bytes_total", direction="upload") == sum(sizes)
    assert delta(before, after, "s3csi_fuse_requests_total", op="create") == len(sizes)
    assert delta(before, after, "s3csi_fuse_io_size_bytes_sum", op="write") == sum(sizes)
    assert delta(before, after, "s3csi_s3_request_total_latency_seconds_count", op="PutObject") == len(sizes)
    assert delta(before, after, "s3csi_s3_request_first_byte_latency_seconds_count", op="PutObject") == len(
        sizes
    )
    assert delta(before, after, "s3csi_fuse_request_errors_total", op="create", errno="ENOENT") == 0


def test_a_read_downloads_exactly_the_file(metrics_mount: tuple[MountedFs, Path, str]) -> None:
    fs, socket_path, _ = metrics_mount
    size, body = len(TO_READ), TO_READ
    before = scrape(socket_path)
    with open(fs.path / "fresh" / "to-read", "rb") as file:
        during = scrape(socket_path)
        assert (
            value(during, "s3csi_open_files", mode="read")
            == value(before, "s3csi_open_files", mode="read") + 1
        )
        assert file.read() == body
    after = scrape(socket_path)
    assert value(after, "s3csi_open_files", mode="read") == value(before, "s3csi_open_files", mode="read")
    assert delta(before, after, "s3csi_s3_requests_total", op="GetObject") == 1
    assert delta(before, after, "s3csi_s3_transferred_bytes_total", direction="download") == size
    assert delta(before, after, "s3csi_fuse_io_size_bytes_sum", op="read") == size
    # The object was fetched at open: every read found its part under way.
    reads = delta(before, after, "s3csi_prefetch_hits_total") + delta(
        before, after, "s3csi_prefetch_misses_total"
    )
    assert delta(before, after, "s3csi_prefetch_misses_total") == 0
    assert 1 <= reads <= delta(before, after, "s3csi_fuse_requests_total", op="read")


def test_a_missing_name_counts_one_enoent(metrics_mount: tuple[MountedFs, Path, str]) -> None:
    fs, socket_path, _ = metrics_mount
    before = scrape(socket_path)
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path / "never-written")
    after = scrape(socket_path)
    assert delta(before, after, "s3csi_fuse_request_errors_total", op="lookup", errno="ENOENT") == 1
    assert delta(before, after, "s3csi_fuse_requests_total", op="lookup") == 1


def test_a_refused_rename_counts_its_errno_and_s3_errors_their_class(
    metrics_mount: tuple[MountedFs, Path, str], s3: Any
) -> None:
    fs, socket_path, bucket = metrics_mount
    (fs.path / "gone-behind").write_bytes(b"x" * 100_000)
    os.stat(fs.path / "gone-behind")
    s3.delete_object(Bucket=bucket, Key="data/gone-behind")
    before = scrape(socket_path)
    # The object is gone: its GET fails with NoSuchKey (404).
    with pytest.raises(OSError), open(fs.path / "gone-behind", "rb") as file:
        file.read()
    with pytest.raises(PermissionError):
        os.rename(fs.path / "written-0", fs.path / "renamed")  # no --allow-rename
    after = scrape(socket_path)
    assert delta(before, after, "s3csi_fuse_request_errors_total", op="rename", errno="EPERM") == 1
    client_errors = sum(
        delta(before, after, "s3csi_s3_request_errors_total", op=op, **{"class": "client"})
        for op in ("GetObject", "HeadObject")
    )
    assert client_errors >= 1
    for kind in ("throttled", "server", "network", "timeout"):
        assert delta(before, after, "s3csi_s3_request_errors_total", op="GetObject", **{"class": kind}) == 0


def test_label_sets_stay_bounded_over_a_thousand_files(
    metrics_mount: tuple[MountedFs, Path, str], s3: Any
) -> None:
    fs, socket_path, bucket = metrics_mount
    names = [f"many/file-{number:04d}" for number in range(1000)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: s3.put_object(Bucket=bucket, Key=f"data/{name}", Body=b"m"), names))
    assert len(os.listdir(fs.path / "many")) == len(names)
    for name in names:
        os.stat(fs.path / name)
    for name in names[:50]:
        assert (fs.path / name).read_bytes() == b"m"
    samples = scrape(socket_path)
    label_sets = {labels for _, labels in samples}
    values = {label_value for labels in label_sets for _, label_value in labels}
    assert not any("file-" in label_value or "many" in label_value for label_value in values)
    assert {dict(labels).get("volume_id", VOLUME_ID) for labels in label_sets} == {VOLUME_ID}
    # FUSE operations x (requests, errors, latency and size buckets) and S3 operations x (requests, errors,
    # two latency histograms): a few hundred series, whatever the number of files.
    assert len(samples) < 1500, len(samples)
    ops = {dict(labels).get("op") for _, labels in samples} - {None}
    assert ops <= set(_bounded_ops()), ops - set(_bounded_ops())


def _bounded_ops() -> list[str]:
    from s3csi.fs.metrics import FUSE_OPS

    s3_ops = [
        "GetObject", "HeadObject", "ListObjectsV2", "PutObject", "CopyObject", "DeleteObject",
        "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload",
    ]  # fmt: skip
    return [*FUSE_OPS, *s3_ops]

"""Lookups answered from a listing of the parent directory (docs/filesystem.md, "Directories and names"):
what they cost in S3 requests, and that names made through the mount are found at once; small files
read ahead across a directory; the kernel's read-ahead on the mount."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.errors import Internal
from s3csi.fs.settings import READ_AHEAD_KIB
from s3csi.kernel.fuse import set_read_ahead
from s3csi.kernel.mount import find_mount
from s3csi.kernel.mountinfo import read_ahead_path
from tests.integration.fs_helpers import (
    RecordingProxy,
    mounted,
    run_mount_command,
    unmount_and_remove,
    world_readable_dir,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

# Long enough that nothing expires while a test runs: the counts below never depend on timing.
LONG_TTL = ("--metadata-ttl", "300")


def put_all(s3: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))


def kinds(proxy: RecordingProxy) -> list[str]:
    """LIST, GET, HEAD, PUT… of every request the mount made."""
    return sorted(
        "LIST" if method == "GET" and "list-type=2" in target else method
        for method, target, _ in proxy.heads()
    )


def exists(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def test_cold_reads_of_a_directory_cost_one_listing_and_a_get_each(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    keys = [f"dir/file-{i:02d}" for i in range(20)]
    put_all(s3, bucket, [*keys, "dir/sub/inner", "other"])
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *LONG_TTL) as fs:
        proxy.reset()
        for key in keys:
            assert (fs.path / key).read_bytes() == key.encode()
        # The root asked for "dir", "dir" for its first file, then listed whole at the second; the reads.
        assert kinds(proxy) == ["GET"] * len(keys) + ["LIST"] * 3
        proxy.reset()
        assert (fs.path / "dir" / "sub" / "inner").read_bytes() == b"dir/sub/inner"
        assert kinds(proxy) == ["GET", "LIST"]  # "sub" came with the listing of "dir"


def test_missing_names_answered_from_the_listing(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    put_all(s3, bucket, ["dir/present", "dir/present.txt"])
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *LONG_TTL) as fs:
        assert exists(fs.path / "dir" / "present")
        proxy.reset()
        assert exists(fs.path / "dir" / "present.txt")
        # The second name asked for in "dir": the whole of "dir"; and the small object itself, whose
        # GET brings its stored attributes (and its bytes, for an open that would follow).
        assert kinds(proxy) == ["GET", "LIST"]
        proxy.reset()
        assert [exists(fs.path / "dir" / f"absent-{i}") for i in range(10)] == [False] * 10
        assert kinds(proxy) == []


def test_zero_negative_ttl_asks_s3_for_every_missing_name(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    put_all(s3, bucket, ["dir/present", "dir/other"])
    flags = ("--endpoint-url", proxy.endpoint_url, *LONG_TTL, "--negative-metadata-ttl", "0")
    with mounted(s3_server, bucket, *flags) as fs:
        assert exists(fs.path / "dir" / "present")
        assert exists(fs.path / "dir" / "other")  # "dir" listed
        proxy.reset()
        assert not exists(fs.path / "dir" / "late")
        assert kinds(proxy) == ["LIST"]  # the one name, not the whole directory again
        s3.put_object(Bucket=bucket, Key="dir/late", Body=b"new")
        assert (fs.path / "dir" / "late").read_bytes() == b"new"  # found at once: nothing cached "absent"
        proxy.reset()
        assert exists(fs.path / "dir" / "present")
        assert kinds(proxy) == []  # names the listing holds are still trusted for --metadata-ttl


def test_names_made_through_the_mount_are_found_at_once(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    put_all(s3, bucket, ["dir/old"])
    with mounted(s3_server, bucket, *LONG_TTL, "--allow-delete") as fs:
        directory = fs.path / "dir"
        assert sorted(os.listdir(directory)) == ["old"]  # a complete listing, trusted from now on
        (directory / "new").write_bytes(b"written here")
        (directory / "made").mkdir()
        assert (directory / "new").read_bytes() == b"written here"
        assert exists(directory / "made")
        assert sorted(os.listdir(directory)) == ["made", "new", "old"]
        (directory / "old").unlink()
        assert not exists(directory / "old")
        s3.put_object(Bucket=bucket, Key="dir/from-elsewhere", Body=b"x")
        # Another client's new object: "absent" per the listing until --negative-metadata-ttl passes.
        assert not exists(directory / "from-elsewhere")
    assert s3.get_object(Bucket=bucket, Key="dir/new")["Body"].read() == b"written here"


def test_small_files_read_in_order_are_fetched_once_and_never_stale(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    keys = [f"dir/file-{i:02d}" for i in range(12)]
    put_all(s3, bucket, keys)
    flags = ("--endpoint-url", proxy.endpoint_url, *LONG_TTL, "--allow-overwrite")
    with mounted(s3_server, bucket, *flags) as fs:
        proxy.reset()
        for key in keys[:3]:
            assert (fs.path / key).read_bytes() == key.encode()
        # file-03 … are being fetched ahead now; this mount replaces one of them.
        (fs.path / keys[5]).write_bytes(b"replaced")
        for key in keys[3:]:
            expected = b"replaced" if key == keys[5] else key.encode()
            assert (fs.path / key).read_bytes() == expected
        gets = [t for method, t, _ in proxy.heads() if method == "GET" and "list-type" not in t]
        # Read ahead or by the open, every other file was fetched exactly once.
        for key in keys:
            if key != keys[5]:
                assert sum(target.endswith("/" + key) for target in gets) == 1, (key, gets)


def test_mount_made_as_root_reads_ahead_in_large_requests(s3_server: EmbeddedS3Server, bucket: str) -> None:
    with mounted(s3_server, bucket) as fs:
        os.stat(fs.path)  # answered: INIT is done, and the read-ahead set right after it
        mount = find_mount(str(fs.path))
        assert mount is not None and mount.is_fuse
        with open(read_ahead_path(mount), encoding="ascii") as sysfs:
            assert int(sysfs.read()) == READ_AHEAD_KIB


def test_set_read_ahead_of_a_fuse_mount(s3_server: EmbeddedS3Server, bucket: str) -> None:
    """What the node publisher does to a source it mounted, once the Mountpoint Pod answered."""
    with mounted(s3_server, bucket) as fs:
        os.stat(fs.path)
        set_read_ahead(str(fs.path), 2048)
        mount = find_mount(str(fs.path))
        assert mount is not None
        with open(read_ahead_path(mount), encoding="ascii") as sysfs:
            assert int(sysfs.read()) == 2048
    with pytest.raises(Internal, match="no FUSE mount at /proc"):
        set_read_ahead("/proc", 2048)


def test_ready_is_reported_after_init_with_the_read_ahead_set(
    s3_server: EmbeddedS3Server, bucket: str
) -> None:
    """Without --foreground the command returns at ``on_ready``: INIT was answered by then (INIT resets
    the read-ahead, which is set just before ``on_ready``), without any request to the mount first."""
    path = world_readable_dir("s3csi-ready-")
    try:
        result = run_mount_command(s3_server, bucket, str(path))
        assert result.returncode == 0, result.stderr
        mount = find_mount(str(path))
        assert mount is not None and mount.is_fuse
        with open(read_ahead_path(mount), encoding="ascii") as sysfs:
            assert int(sysfs.read()) == READ_AHEAD_KIB
    finally:
        unmount_and_remove(path)


def test_stored_attributes_cost_a_small_file_no_request_and_a_large_one_a_head(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    s3.put_object(Bucket=bucket, Key="small", Body=b"s" * 4096, Metadata={"mtime": "1000000000"})
    s3.put_object(Bucket=bucket, Key="large", Body=b"l" * 200_000, Metadata={"mtime": "2000000000"})
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *LONG_TTL) as fs:
        # A lookup of a small object fetches it whole (its headers carry the attributes); the open that
        # follows reads those bytes. (The LISTs are the lookup's, as without stored attributes.)
        assert os.stat(fs.path / "small").st_mtime == 1_000_000_000
        assert (fs.path / "small").read_bytes() == b"s" * 4096
        assert [kind for kind in kinds(proxy) if kind != "LIST"] == ["GET"]
        proxy.reset()
        # A larger one is not downloaded by a stat: one HEAD.
        assert os.stat(fs.path / "large").st_mtime == 2_000_000_000
        assert [kind for kind in kinds(proxy) if kind != "LIST"] == ["HEAD"]

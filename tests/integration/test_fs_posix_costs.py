"""The S3 requests of everyday operations, as docs/posix.md states them: each operation on a path the mount
has already looked up, with and without --staged-writes, counted on the wire by a recording proxy."""

from __future__ import annotations

import errno
import functools
import os
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import RecordingProxy, mounted, world_readable_dir
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

# Long enough that nothing expires while a test runs: the counts below never depend on timing.
FLAGS = ("--metadata-ttl", "300", "--allow-delete", "--allow-overwrite", "--allow-rename")
SMALL = b"s" * 4096


@dataclass(frozen=True)
class Case:
    name: str
    action: Callable[[Path], object]
    requests: list[str]  # sorted kinds, see kinds()
    error: int = 0  # the errno the action fails with, 0 when it works


def kinds(proxy: RecordingProxy) -> list[str]:
    """LIST, GET, HEAD, PUT, COPY, DELETE, POST of every request the mount made."""
    found = []
    for method, target, headers in proxy.heads():
        if method == "GET" and "list-type=2" in target:
            found.append("LIST")
        elif method == "PUT" and "x-amz-copy-source" in headers:
            found.append("COPY")
        else:
            found.append(method)
    return sorted(found)


def made(proxy: RecordingProxy, requests: list[str]) -> bool:
    return kinds(proxy) == requests


def append(directory: Path) -> None:
    with open(directory / "f", "ab") as file:
        file.write(b"more")


def rewrite(directory: Path) -> None:
    (directory / "f").write_bytes(SMALL)


def touch(directory: Path) -> None:
    subprocess.run(["touch", str(directory / "f")], check=True, capture_output=True)


def chown_to_owner(directory: Path) -> None:
    status = (directory / "f").stat()
    os.chown(directory / "f", status.st_uid, status.st_gid)


def read_write_open(directory: Path) -> None:
    descriptor = os.open(directory / "f", os.O_RDWR)
    try:
        os.pwrite(descriptor, b"q", 5)
    finally:
        os.close(descriptor)


BOTH = [
    Case("O_TRUNC rewrite", rewrite, ["PUT"]),
    Case("utimensat", lambda d: os.utime(d / "f", (1700000000, 1700000000)), ["COPY"]),
    Case("chmod", lambda d: os.chmod(d / "f", 0o600), ["COPY"]),
    Case("chmod of a directory", lambda d: os.chmod(d, 0o700), []),
    Case("chown to the owner", chown_to_owner, []),
    Case("chown to another uid", lambda d: os.chown(d / "f", 4242, -1), [], errno.EPERM),
    Case("unlink", lambda d: os.unlink(d / "f"), ["DELETE"]),
    # The lookup told the object's size: no HEAD before the copy.
    Case("rename", lambda d: os.rename(d / "f", d / "g"), ["COPY", "DELETE"]),
    Case("symlink", lambda d: os.symlink("target", d / "l"), ["PUT"]),
    Case("hard link", lambda d: os.link(d / "f", d / "h"), [], errno.ENOTSUP),
    Case("setxattr", lambda d: os.setxattr(d / "f", "user.k", b"v"), [], errno.EOPNOTSUPP),
    Case("mkdir", lambda d: os.mkdir(d / "new"), []),
    Case("read of a file the lookup fetched", lambda d: (d / "f").read_bytes(), []),
]

DEFAULT = [
    *BOTH,
    Case("touch", touch, ["COPY"]),
    Case("append", append, [], errno.EPERM),
    Case("truncate", lambda d: os.truncate(d / "f", 100), [], errno.EPERM),
    Case("read-write open", read_write_open, [], errno.EPERM),
]

STAGED = [
    *BOTH,
    # touch opens for writing without O_TRUNC: a staged copy, uploaded whole.
    Case("touch", touch, ["GET", "HEAD", "PUT"]),
    Case("append", append, ["GET", "HEAD", "PUT"]),
    Case("truncate to 100", lambda d: os.truncate(d / "f", 100), ["GET", "HEAD", "PUT"]),
    Case("truncate to 0", lambda d: os.truncate(d / "f", 0), ["HEAD", "PUT"]),
    Case("read-write open", read_write_open, ["GET", "HEAD", "PUT"]),
]


def measure(fs_path: Path, proxy: RecordingProxy, cases: list[Case]) -> dict[str, tuple[int, list[str]]]:
    """Each case in its own directory, after two lookups there (the file's, which fetches it, and a missing
    name's, which lists the whole directory): the action's own errno and requests, waited for (a rename's
    delete lands after the call returns)."""
    seen = {}
    for index, case in enumerate(cases):
        directory = fs_path / f"case-{index:02d}"
        (directory / "f").stat()
        assert not (directory / "absent").exists()
        proxy.reset()
        try:
            case.action(directory)
            failure = 0
        except OSError as error:
            failure = error.errno or -1
        wait_until(functools.partial(made, proxy, case.requests), within=10)
        seen[case.name] = (failure, kinds(proxy))
    return seen


def check_cases(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy, *, staged: bool
) -> None:
    cases = STAGED if staged else DEFAULT
    for index in range(len(cases)):
        s3.put_object(Bucket=bucket, Key=f"case-{index:02d}/f", Body=SMALL)
    flags = ["--endpoint-url", proxy.endpoint_url, *FLAGS]
    if staged:
        flags += ["--cache", str(world_readable_dir("s3csi-posix-cache-")), "--staged-writes"]
    with mounted(s3_server, bucket, *flags) as fs:
        seen = measure(fs.path, proxy, cases)
    assert seen == {case.name: (case.error, case.requests) for case in cases}


def test_requests_of_each_operation_are_the_documented_ones(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    check_cases(s3_server, s3, bucket, proxy, staged=False)


def test_requests_of_each_operation_with_staged_writes_are_the_documented_ones(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    check_cases(s3_server, s3, bucket, proxy, staged=True)


MTIME_NS = 1_700_000_000_123_456_789
# What S3 holds after times set to MTIME_NS and a chmod to 0640 (s3fs's format: the whole st_mode).
STORED_640 = {
    "mtime": "1700000000.123456789",
    "atime": "1700000000.123456789",
    "mode": str(stat.S_IFREG | 0o640),
}


def test_times_and_mode_set_right_after_an_upload_travel_with_the_rename_or_one_copy(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    """rsync -a's pattern costs the upload, one copy and one delete; cp -a's the upload and one copy."""
    for directory in ("rsync", "cp"):
        s3.put_object(Bucket=bucket, Key=f"{directory}/old", Body=b"")
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *FLAGS) as fs:
        for directory in ("rsync", "cp"):
            (fs.path / directory / "old").stat()
            assert not (fs.path / directory / "absent").exists()

        # rsync: a temporary name written and closed, its times and mode set, renamed over the final name.
        temporary, final = fs.path / "rsync" / ".f.Xy12ab", fs.path / "rsync" / "f"
        proxy.reset()
        temporary.write_bytes(SMALL)
        os.utime(temporary, ns=(MTIME_NS, MTIME_NS))
        os.chmod(temporary, 0o640)
        os.rename(temporary, final)
        status = final.stat()  # the rename told the mount all it needs: no request
        # The delete of the temporary name lands after rename returns; a listing waits for it.
        assert sorted(os.listdir(fs.path / "rsync")) == ["f", "old"]
        assert kinds(proxy) == ["COPY", "DELETE", "LIST", "PUT"]
        assert (stat.S_IMODE(status.st_mode), status.st_mtime_ns) == (0o640, MTIME_NS)

        # cp -a: no rename; the changes are stored together, in one copy, soon after.
        copied = fs.path / "cp" / "f"
        proxy.reset()
        copied.write_bytes(SMALL)
        os.utime(copied, ns=(MTIME_NS, MTIME_NS))
        os.chmod(copied, 0o640)
        assert stat.S_IMODE(copied.stat().st_mode) == 0o640  # the mount shows them at once
        stored = wait_until(lambda: s3.head_object(Bucket=bucket, Key="cp/f")["Metadata"] == STORED_640)
        assert stored, s3.head_object(Bucket=bucket, Key="cp/f")["Metadata"]
        assert kinds(proxy) == ["COPY", "PUT"]

        # Unmounted right after a chmod: stored before the mounter exits.
        last = fs.path / "cp" / "g"
        last.write_bytes(SMALL)
        os.utime(last, ns=(MTIME_NS, MTIME_NS))
        os.chmod(last, 0o640)
        assert fs.unmount() == 0
    assert s3.head_object(Bucket=bucket, Key="cp/g")["Metadata"] == STORED_640
    assert s3.head_object(Bucket=bucket, Key="rsync/f")["Metadata"] == STORED_640
    assert s3.get_object(Bucket=bucket, Key="rsync/f")["Body"].read() == SMALL
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="rsync/")["Contents"]
    assert sorted(item["Key"] for item in listed) == ["rsync/f", "rsync/old"]


def test_a_listing_costs_one_request_per_thousand_names(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    for index in range(1001):
        s3.put_object(Bucket=bucket, Key=f"big/k{index:04d}", Body=b"")
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *FLAGS) as fs:
        (fs.path / "big").stat()
        proxy.reset()
        assert len(os.listdir(fs.path / "big")) == 1001
        assert kinds(proxy) == ["LIST", "LIST"]


def test_renames_in_a_row_leave_only_the_new_names_and_share_their_deletes(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, proxy: RecordingProxy
) -> None:
    """Each rename copies; the old names go in DeleteObjects batches (or single DELETEs), one key each."""
    count = 30
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"moved/.t{index:02d}", Body=SMALL)
    with mounted(s3_server, bucket, "--endpoint-url", proxy.endpoint_url, *FLAGS) as fs:
        names = sorted(os.listdir(fs.path / "moved"))
        proxy.reset()
        for name in names:
            os.rename(fs.path / "moved" / name, fs.path / "moved" / name.removeprefix("."))
        # A listing that asks S3 waits for every delete under it.
        fs.path.joinpath("moved").stat()
        assert sorted(os.listdir(fs.path / "moved")) == [name.removeprefix(".") for name in names]
        requests = kinds(proxy)
    deletes = [kind for kind in requests if kind in ("DELETE", "POST")]
    assert requests.count("COPY") == count and 1 <= len(deletes) <= count
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="moved/")["Contents"]
    assert sorted(entry["Key"] for entry in listed) == [f"moved/t{index:02d}" for index in range(count)]

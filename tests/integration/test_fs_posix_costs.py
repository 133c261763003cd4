"""The S3 requests of everyday operations, as docs/posix.md states them: each operation on a path the mount
has already looked up, with and without --staged-writes, counted on the wire by a recording proxy."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import RecordingProxy, mounted, world_readable_dir

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
    Case("rename", lambda d: os.rename(d / "f", d / "g"), ["COPY", "DELETE", "HEAD"]),
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
    name's, which lists the whole directory): the action's own errno and requests."""
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

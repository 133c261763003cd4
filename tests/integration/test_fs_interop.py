"""Interoperability: times, modes and symbolic links written through real s3fs-fuse and rclone mounts of
the test bucket are shown through s3csi, and the ones s3csi writes are shown through them."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import MountedFs, is_mounted, mounted, world_readable_dir
from tests.integration.test_fs_attributes import EVERYDAY_FLAGS
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

WHEN_NS = 1_234_567_890_000_000_000  # whole seconds: s3fs keeps no fraction
LATER_NS = 1_300_000_000_000_000_000


@contextlib.contextmanager
def peer_mount(server: EmbeddedS3Server, bucket: str, system: str) -> Iterator[Path]:
    """``system`` (s3fs or rclone) mounting ``bucket`` in the foreground, unmounted afterwards."""
    path = world_readable_dir(f"s3csi-{system}-")
    work = Path(tempfile.mkdtemp(prefix=f"s3csi-{system}-work-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if system == "s3fs":
        passwd = work / "passwd"
        passwd.write_text(f"{server.access_key_id}:{server.secret_access_key}\n")
        passwd.chmod(0o600)
        options = (
            f"url={server.endpoint_url},use_path_request_style,passwd_file={passwd},endpoint={server.region}"
            ",stat_cache_expire=0"
        )
        argv = ["s3fs", bucket, str(path), "-f", "-o", options]
    else:
        (work / "rclone.conf").touch()
        argv = ["rclone", "mount", f":s3:{bucket}", str(path), "--config", str(work / "rclone.conf")]
        argv += ["--s3-provider", "Other", "--s3-endpoint", server.endpoint_url, "--s3-region", server.region]
        argv += [
            "--s3-access-key-id",
            server.access_key_id,
            "--s3-secret-access-key",
            server.secret_access_key,
        ]
        argv += ["--cache-dir", str(work / "cache"), "--vfs-cache-mode", "writes", "--dir-cache-time", "0s"]
    log = open(work / "log", "wb")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        mounted_in_time = wait_until(lambda: is_mounted(path) or process.poll() is not None, within=30)
        assert mounted_in_time and process.poll() is None, (work / "log").read_text(errors="replace")
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if is_mounted(path):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def ours(s3_server: EmbeddedS3Server, bucket: str) -> Iterator[MountedFs]:
    flags = ("--file-mode", "0777", "--dir-mode", "0777", "--metadata-ttl", "0", *EVERYDAY_FLAGS)
    with mounted(s3_server, bucket, *flags) as fs:
        yield fs


def time_and_mode(path: Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_mtime_ns, stat.S_IMODE(status.st_mode)


def write(path: Path, data: bytes, *, mode: int, mtime_ns: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_s3fs_and_s3csi_read_each_others_times_modes_and_links(
    s3_server: EmbeddedS3Server, bucket: str, ours: MountedFs
) -> None:
    with peer_mount(s3_server, bucket, "s3fs") as s3fs:
        write(s3fs / "by-s3fs", b"one", mode=0o640, mtime_ns=WHEN_NS)
        os.symlink("by-s3fs", s3fs / "link-by-s3fs")
        status = os.stat(ours.path / "by-s3fs")
        assert (status.st_mtime_ns, stat.S_IMODE(status.st_mode)) == (WHEN_NS, 0o640)
        assert os.readlink(ours.path / "link-by-s3fs") == "by-s3fs"
        assert (ours.path / "link-by-s3fs").read_bytes() == b"one"

        write(ours.path / "by-s3csi", b"two", mode=0o600, mtime_ns=LATER_NS)
        os.symlink("by-s3csi", ours.path / "link-by-s3csi")
        # Times and mode set right after the upload reach S3 within a moment (docs/posix.md).
        shown = wait_until(lambda: time_and_mode(s3fs / "by-s3csi") == (LATER_NS, 0o600))
        assert shown, time_and_mode(s3fs / "by-s3csi")
        assert os.readlink(s3fs / "link-by-s3csi") == "by-s3csi"
        assert (s3fs / "link-by-s3csi").read_bytes() == b"two"
        # A time with a fraction (rclone's form, and ours for times that have one).
        write(ours.path / "fraction", b"3", mode=0o644, mtime_ns=LATER_NS + 250_000_000)
        shown = wait_until(lambda: time_and_mode(s3fs / "fraction") == (LATER_NS + 250_000_000, 0o644))
        assert shown, time_and_mode(s3fs / "fraction")


def test_rclone_and_s3csi_read_each_others_times(
    s3_server: EmbeddedS3Server, bucket: str, ours: MountedFs
) -> None:
    # rclone mount keeps modification times (its "mtime" metadata); it has no modes or links to share.
    with peer_mount(s3_server, bucket, "rclone") as rclone:
        (rclone / "by-rclone").write_bytes(b"one")
        os.utime(rclone / "by-rclone", ns=(WHEN_NS + 5, WHEN_NS + 500_000_000))
        assert wait_until(lambda: os.path.exists(ours.path / "by-rclone"), within=10)
        # rclone writes the time as a float of seconds: kept to the microsecond at this distance from 1970.
        shown = os.stat(ours.path / "by-rclone").st_mtime_ns
        assert abs(shown - (WHEN_NS + 500_000_000)) < 1000

        (ours.path / "by-s3csi").write_bytes(b"two")
        os.utime(ours.path / "by-s3csi", ns=(LATER_NS, LATER_NS + 250_000_000))
        assert wait_until(lambda: os.path.exists(rclone / "by-s3csi"), within=10)
        # Times set right after the upload reach S3 within a moment (docs/posix.md).
        shown = wait_until(lambda: os.stat(rclone / "by-s3csi").st_mtime_ns == LATER_NS + 250_000_000)
        assert shown, os.stat(rclone / "by-s3csi").st_mtime_ns
        assert (rclone / "by-s3csi").read_bytes() == b"two"

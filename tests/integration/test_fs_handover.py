"""The Mountpoint Pod's way of mounting: root opens /dev/fuse and mounts it, an unprivileged process
(uid 1000, no capabilities) serves it as ``s3csi mount BUCKET /dev/fd/N``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.fuse import mount_fuse, open_fuse_device
from tests.conftest import MOUNTER_UID, WORKLOAD_UID, run_as
from tests.integration.fs_helpers import is_mounted, mount_env, world_readable_dir
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]


def wait_served(path: Path, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:

    def served() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the file system exited with {process.returncode}", pytrace=False)
        try:
            os.statvfs(path)
        except OSError:
            return False
        return True

    if not wait_until(served, within=timeout, interval=0.1):
        os.statvfs(path)  # raises what the mount answers


@pytest.fixture
def handed_over(
    s3_server: EmbeddedS3Server, bucket: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    flags: list[str] = request.param
    target = world_readable_dir("s3csi-fd-")
    fd = open_fuse_device()
    process = None
    try:
        mount_fuse(
            fd, str(target), allow_other=True, read_only=False, user_id=MOUNTER_UID, group_id=MOUNTER_UID
        )
        unprivileged = ["setpriv", f"--reuid={MOUNTER_UID}", f"--regid={MOUNTER_UID}", "--clear-groups"]
        command = [
            *unprivileged, "--inh-caps=-all", "--",
            sys.executable, "-m", "s3csi", "mount", bucket, f"/dev/fd/{fd}", "--foreground", *flags,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, env=mount_env(s3_server), pass_fds=(fd,), stdin=subprocess.DEVNULL
        )
        os.close(fd)  # from now on only the file system holds the connection
        fd = -1
        wait_served(target, process)
        yield target, process
    finally:
        if fd >= 0:
            os.close(fd)
        if is_mounted(target):
            subprocess.run(["umount", str(target)], check=False)
        if process is not None:
            assert process.wait(timeout=30) == 0
        if is_mounted(target):
            subprocess.run(["umount", "-l", str(target)], check=False)
        target.rmdir()


@pytest.mark.parametrize(
    "handed_over", [["--uid", str(WORKLOAD_UID), "--gid", str(WORKLOAD_UID), "--allow-other"]], indirect=True
)
def test_unprivileged_process_serves_a_mount_made_by_root(
    handed_over: tuple[Path, subprocess.Popen[bytes]], s3: Any, bucket: str
) -> None:
    path, process = handed_over
    written = run_as(WORKLOAD_UID, WORKLOAD_UID, ["sh", "-c", f"printf handed > {path}/over.txt"])
    assert written.returncode == 0, written.stderr
    assert s3.get_object(Bucket=bucket, Key="over.txt")["Body"].read() == b"handed"
    st = (path / "over.txt").stat()
    assert (st.st_uid, st.st_gid) == (WORKLOAD_UID, WORKLOAD_UID)
    # The file system process runs as uid 1000 with no capabilities.
    status = Path(f"/proc/{process.pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [str(MOUNTER_UID)] * 4
    assert "CapEff:\t0000000000000000" in status


@pytest.mark.parametrize("handed_over", [["--allow-root"]], indirect=True)
def test_allow_root_lets_in_only_root_and_the_mounter(
    handed_over: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    path, _ = handed_over
    # The kernel mount allows others; libfuse then refuses every uid but root and the serving user.
    assert os.listdir(path) == []
    assert run_as(MOUNTER_UID, MOUNTER_UID, ["ls", str(path)]).returncode == 0
    refused = run_as(WORKLOAD_UID, WORKLOAD_UID, ["ls", str(path)])
    assert refused.returncode != 0 and b"Permission denied" in refused.stderr

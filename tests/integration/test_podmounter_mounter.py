"""``s3csi mounter`` as the Mountpoint Pod runs it: uid 1000, no capabilities, a FUSE fd from a
privileged parent (this test, as root), the real S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.credentials.files import write_shared_credentials
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.errors import InvalidArgument, NotFound
from s3csi.kernel.fuse import mount_fuse, open_fuse_device
from s3csi.kernel.mount import find_mount, unmount
from s3csi.podmounter import protocol
from s3csi.podmounter.protocol import MountRequest
from s3csi.podmounter.runtime.local import mounter_command, mounter_environment, prepare_comm_dir
from s3csi.s3.credentials import Credentials
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")


class Mounter:
    def __init__(self, tmp_path: Path) -> None:
        self.comm = tmp_path / "comm"
        prepare_comm_dir(self.comm)
        self.log = tmp_path / "mounter.log"
        self.source = tmp_path / "source"
        self.source.mkdir()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                mounter_command(),
                cwd=self.comm,
                env=mounter_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        listening = self.comm / protocol.SOCKET_NAME
        assert wait_until(lambda: listening.exists() or self.process.poll() is not None), "did not listen"
        assert self.process.poll() is None, self.log.read_text()

    @property
    def socket(self) -> str:
        return str(self.comm / protocol.SOCKET_NAME)

    def mount(self, request: MountRequest, *, read_only: bool = False) -> None:
        fd = open_fuse_device()
        try:
            mount_fuse(fd, str(self.source), allow_other=True, read_only=read_only)
            try:
                protocol.request_mount(self.socket, request, fd)
            except BaseException:
                unmount(str(self.source), lazy=True)
                raise
        finally:
            os.close(fd)

    def close(self) -> None:
        if find_mount(str(self.source)):
            unmount(str(self.source), lazy=True)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def mounter(tmp_path: Path) -> Iterator[Mounter]:
    mounter = Mounter(tmp_path)
    yield mounter
    mounter.close()


def request_for(server: EmbeddedS3Server, bucket: str, *args: str) -> MountRequest:
    return MountRequest(
        version=protocol.VERSION,
        volume_id="vol-1",
        bucket=bucket,
        prefix="",
        args=["--allow-other", "--uid=1001", "--gid=1001", "--dir-mode=770", "--file-mode=660", *args],
        env={
            "region": server.region,
            "endpoint_url": server.endpoint_url,
            "force_path_style": True,
            "credentials_file": "credentials/credentials",
        },
    )


def give_credentials(mounter: Mounter, server: EmbeddedS3Server) -> None:
    credentials = Credentials(server.access_key_id, server.secret_access_key)
    write_shared_credentials(str(mounter.comm / "credentials"), credentials, gid=1000)


def test_mounter_serves_the_handed_over_fd_and_exits_0_on_unmount(
    mounter: Mounter, s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello from S3")
    give_credentials(mounter, s3_server)
    mounter.mount(request_for(s3_server, bucket, "--allow-delete"))

    assert not (mounter.comm / protocol.SOCKET_NAME).exists()  # serving: no longer takes requests
    assert (mounter.source / "dir" / "hello.txt").read_bytes() == b"hello from S3"
    st = os.stat(mounter.source / "dir" / "hello.txt")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1001, 1001, 0o660)
    (mounter.source / "new.txt").write_bytes(b"written through the Mountpoint Pod")
    assert s3.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"written through the Mountpoint Pod"

    unmount(str(mounter.source))
    assert mounter.process.wait(30) == 0, mounter.log.read_text()


def test_mounter_refuses_a_missing_bucket_with_the_reason(
    mounter: Mounter, s3_server: EmbeddedS3Server
) -> None:
    give_credentials(mounter, s3_server)
    with pytest.raises(NotFound, match=r"refused the mount: .*no-such-bucket"):
        mounter.mount(request_for(s3_server, "no-such-bucket"))
    assert mounter.process.wait(30) == 1
    assert find_mount(str(mounter.source)) is None


def test_mounter_refuses_bad_mount_arguments(
    mounter: Mounter, s3_server: EmbeddedS3Server, bucket: str
) -> None:
    give_credentials(mounter, s3_server)
    with pytest.raises(InvalidArgument, match=r"refused the mount: .*--dir-mode"):
        mounter.mount(request_for(s3_server, bucket, "--dir-mode=999"))
    assert mounter.process.wait(30) == 1


def test_a_malformed_request_does_not_stop_the_mounter(
    mounter: Mounter, s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.connect(mounter.socket)
        sock.send(b'{"version": 1}')  # no fd, no fields
        sock.settimeout(10)
        assert b"exactly one fd" in sock.recv(protocol.MAX_MESSAGE_BYTES)
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    give_credentials(mounter, s3_server)
    mounter.mount(request_for(s3_server, bucket))
    assert os.listdir(mounter.source) == ["x"]


def test_mounter_refuses_to_run_as_root(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "s3csi", "mounter", "--comm-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "s3csi mounter: error: s3csi mounter must not run as root: run it as the Mountpoint Pod user (1000)"
    ]

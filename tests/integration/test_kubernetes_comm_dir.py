"""The Kubernetes runtime never follows a path a Mountpoint Pod controls: its comm dir is an emptyDir the
mounter (uid 1000) writes. Each attack is run as the attacker would, and the victim is checked afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.podmounter.runtime.kubernetes import comm_dir_of, comm_dir_problem
from tests.conftest import run_as

MOUNTER = 1000


@pytest.fixture
def kubelet_dir() -> Iterator[Path]:
    # Short (a unix socket path has 107 bytes) and searchable by uid 1000, as /tmp/pytest-of-root is not.
    base = Path(tempfile.mkdtemp(prefix="s3csi-cd-"))
    base.chmod(0o755)
    directory = base / "k"
    directory.mkdir(mode=0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(base)


def make_comm_dir(kubelet_dir: Path, uid: str) -> Path:
    """As kubelet makes an fsGroup 1000 emptyDir: root:1000, 2777, its parents root's."""
    comm = Path(comm_dir_of(str(kubelet_dir), uid))
    comm.mkdir(parents=True)
    for parent in (comm.parent, comm.parent.parent, comm.parent.parent.parent):
        parent.chmod(0o755)
    os.chown(comm, 0, MOUNTER)
    comm.chmod(0o2777)
    return comm


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    """A root service's socket: the node plugin must never take it for a mounter's."""
    directory = tmp_path / "service"
    directory.mkdir(mode=0o755)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(str(directory / "s.sock"))
        listener.listen(4)
        listener.setblocking(False)
        yield listener, directory / "s.sock"


def heard_nothing(listener: socket.socket) -> bool:
    try:
        listener.accept()
    except BlockingIOError:
        return True
    return False


def test_a_listening_mounter_is_found(kubelet_dir: Path) -> None:
    uid = str(uuid.uuid4())
    comm = make_comm_dir(kubelet_dir, uid)
    assert comm_dir_problem(str(kubelet_dir), uid) == f"its mounter does not listen on {comm}/mount.sock yet"
    comm_fd = os.open(comm, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
            listener.bind(f"/proc/self/fd/{comm_fd}/mount.sock")  # the full path is over 107 bytes
            assert comm_dir_problem(str(kubelet_dir), uid) is None
    finally:
        os.close(comm_fd)


def test_a_mount_sock_symlink_planted_by_the_mounter_is_not_followed(
    kubelet_dir: Path, victim: tuple[socket.socket, Path]
) -> None:
    listener, service = victim
    uid = str(uuid.uuid4())
    comm = make_comm_dir(kubelet_dir, uid)
    planted = run_as(MOUNTER, MOUNTER, ["ln", "-s", str(service), str(comm / "mount.sock")], groups=[MOUNTER])
    assert planted.returncode == 0, planted.stderr

    assert comm_dir_problem(str(kubelet_dir), uid) == f"{comm}/mount.sock is not a socket"
    assert heard_nothing(listener)
    assert os.path.islink(comm / "mount.sock")  # left as it is: the runtime only looks


def test_a_comm_dir_reached_through_a_symlink_is_refused(kubelet_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mount.sock").touch()
    uid = str(uuid.uuid4())
    volumes = kubelet_dir / "pods" / uid / "volumes" / "kubernetes.io~empty-dir"
    volumes.mkdir(parents=True)
    (volumes / "comm").symlink_to(elsewhere)

    problem = comm_dir_problem(str(kubelet_dir), uid)

    assert problem is not None and "is not a plain directory" in problem, problem
    other = str(uuid.uuid4())
    (kubelet_dir / "pods" / other).symlink_to(kubelet_dir / "pods" / uid)
    problem = comm_dir_problem(str(kubelet_dir), other)
    assert problem is not None and "is not a plain directory" in problem, problem


def test_a_comm_dir_not_owned_by_root_is_refused(kubelet_dir: Path) -> None:
    uid = str(uuid.uuid4())
    comm = make_comm_dir(kubelet_dir, uid)
    os.chown(comm, MOUNTER, MOUNTER)
    assert comm_dir_problem(str(kubelet_dir), uid) == (
        f"its comm dir {comm} is owned by uid {MOUNTER}, not root as kubelet makes an emptyDir"
    )


def test_a_missing_comm_dir_is_named(kubelet_dir: Path) -> None:
    uid = str(uuid.uuid4())
    assert comm_dir_problem(str(kubelet_dir), uid) == (
        f"its comm dir {comm_dir_of(str(kubelet_dir), uid)} does not exist (kubelet has not set up the pod's "
        "volumes)"
    )

"""Root never follows a path a mounter controls, played as the attacker would (docs/security.md).

The comm dir is group 1000, mode 2770 and not sticky: the mounter (uid 1000) may rename and replace
any name in it, root's ``credentials`` directory and its own ``mount.sock`` included. The attacker
here is a real uid-1000 process working in a real Mountpoint Pod's comm dir. It plants a symlink
(to a root directory, to a root file), a FIFO or a hard link where the node plugin will work next —
a publish that shares the Mountpoint Pod, an unpublish that retires it, a first publish that
connects to mount.sock — and the root-owned victims must be unchanged afterwards. Needs root.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.credentials.files import credentials_file_name
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.errors import Unavailable
from s3csi.kernel.mount import mountinfo
from s3csi.podmounter.runtime import MountpointPod
from tests.conftest import MOUNTER_UID, run_as
from tests.integration.test_podmounter_publisher import publisher, spec, state  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("privileged")

# Runs as uid 1000 in the comm dir: moves root's entry aside (a rename inside one directory needs
# no write permission on the entry itself) and plants its own.
PLANTER = r"""
import errno, json, os, sys

plan = json.load(sys.stdin)
name = plan["name"]
try:
    os.rename(name, f"{name}.moved-{os.getpid()}")
except FileNotFoundError:
    pass
if plan["kind"] == "symlink":
    os.symlink(plan["to"], name)
elif plan["kind"] == "fifo":
    os.mkfifo(name)
elif plan["kind"] == "hardlink":
    try:
        os.link(plan["to"], name)
    except OSError as exc:
        print(json.dumps({"hardlink": errno.errorcode[exc.errno]}))
        sys.exit(0)
print(json.dumps({"planted": plan["kind"]}))
"""


def plant(comm_dir: str, name: str, kind: str, to: str = "") -> dict[str, str]:
    result = run_as(
        MOUNTER_UID,
        MOUNTER_UID,
        [sys.executable, "-c", PLANTER],
        groups=[MOUNTER_UID],
        input=json.dumps({"name": name, "kind": kind, "to": to}).encode(),
        cwd=comm_dir,
    )
    assert result.returncode == 0, result.stderr.decode()
    outcome: dict[str, str] = json.loads(result.stdout)
    return outcome


@pytest.fixture
def victims(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Root's own things, out of every mounter's reach: a 0700 directory holding a file named like a
    credentials file (what a retire deletes), and a 0600 file."""
    directory = tmp_path / "victim-dir"
    directory.mkdir(mode=0o700)
    (directory / "credentials-precious").write_text("root's data\n")
    file = tmp_path / "victim-file"
    file.write_text("root's file\n")
    file.chmod(0o600)
    yield {"directory": directory, "file": file}


def fingerprint(path: Path) -> Any:
    """Owner, mode, link count and content of ``path`` (and of every entry of a directory)."""
    st = os.lstat(path)
    head = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_nlink)
    if stat.S_ISDIR(st.st_mode):
        return head, sorted((entry.name, fingerprint(Path(entry.path))) for entry in os.scandir(path))
    return head, hashlib.sha256(path.read_bytes()).hexdigest()


def the_pod(the_publisher: Any) -> MountpointPod:
    [pod] = the_publisher.runtime.list()
    assert isinstance(pod, MountpointPod)
    return pod


def assert_credentials_dir_is_roots(pod: MountpointPod, volume_id: str) -> None:
    st = os.lstat(pod.credentials_dir)
    assert stat.S_ISDIR(st.st_mode)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1000, 0o2750)
    keys = os.lstat(Path(pod.credentials_dir) / credentials_file_name(volume_id, pod.key))
    assert stat.S_ISREG(keys.st_mode) and (keys.st_uid, keys.st_gid, stat.S_IMODE(keys.st_mode)) == (
        0,
        1000,
        0o640,
    )


@pytest.mark.parametrize("kind, victim", [("symlink", "directory"), ("symlink", "file"), ("fifo", None)])
def test_a_planted_credentials_entry_is_replaced_never_followed(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
    *,
    victims: dict[str, Path],
    kind: str,
    victim: str | None,
) -> None:
    before = {name: fingerprint(path) for name, path in victims.items()}
    the_publisher = publisher(state, s3_server)
    first = spec(state, bucket, "first")
    asyncio.run(the_publisher.publish(first))
    pod = the_pod(the_publisher)
    target = str(victims[victim]) if victim else ""
    assert plant(pod.comm_dir, "credentials", kind, target) == {"planted": kind}

    # The next publish with the same sharing key rewrites the keys: the planted entry is removed
    # (the link itself, never what it points at) and root's directory made anew.
    joining = spec(state, bucket, "joining")
    asyncio.run(the_publisher.publish(joining))

    assert {name: fingerprint(path) for name, path in victims.items()} == before
    assert the_pod(the_publisher) == pod
    assert_credentials_dir_is_roots(pod, first.volume_id)
    assert os.listdir(joining.target_path) == []  # served

    # And again before the retire, which deletes every credentials file it finds.
    assert plant(pod.comm_dir, "credentials", kind, target) == {"planted": kind}
    for one in (first, joining):
        asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))
    assert the_publisher.runtime.list() == []
    assert {name: fingerprint(path) for name, path in victims.items()} == before


@pytest.fixture
def reachable_root_file() -> Iterator[Path]:
    """A root 0600 file that uid 1000 can name (directly in /tmp, the state dir's file system)."""
    fd, name = tempfile.mkstemp(prefix="s3csi-victim-", dir="/tmp")
    os.write(fd, b"root's file\n")
    os.close(fd)
    yield Path(name)
    os.unlink(name)


def test_a_hard_link_to_a_root_file_is_refused_by_the_kernel_and_replaced_by_the_driver(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
    reachable_root_file: Path,
) -> None:
    the_publisher = publisher(state, s3_server)
    first = spec(state, bucket, "first")
    asyncio.run(the_publisher.publish(first))
    pod = the_pod(the_publisher)
    victim = reachable_root_file
    assert os.stat(victim).st_dev == os.stat(pod.comm_dir).st_dev  # else EXDEV would prove nothing
    # fs.protected_hardlinks (1 on this node, the default of every distribution) stops uid 1000 ...
    assert plant(pod.comm_dir, "credentials", "hardlink", str(victim)) == {"hardlink": "EPERM"}
    # ... so root makes the link where the attacker moved root's directory away, as a node without
    # that protection would let the mounter.
    os.link(victim, pod.credentials_dir)
    before = fingerprint(victim)

    joining = spec(state, bucket, "joining")
    asyncio.run(the_publisher.publish(joining))

    assert_credentials_dir_is_roots(pod, first.volume_id)
    after = fingerprint(victim)
    assert after[0][:3] == before[0][:3] and after[1] == before[1]  # owner, mode, content
    assert after[0][3] == before[0][3] - 1  # only the planted name is gone
    for one in (first, joining):
        asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))


class PlantingRuntime:
    """Once the Mountpoint Pod listens, ``plant`` replaces its mount.sock before the node plugin connects."""

    def __init__(self, runtime: Any, plant: Any) -> None:
        self.runtime = runtime
        self.plant = plant

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod:
        pod: MountpointPod = await self.runtime.start(key, workload_uid)
        self.plant(pod)
        return pod


@pytest.fixture
def victim_service(tmp_path: Path) -> Iterator[socket.socket]:
    """A root service's SEQPACKET socket in a root-only directory: it must never hear from the driver."""
    directory = tmp_path / "service"
    directory.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(str(directory / "s.sock"))
        listener.listen(4)
        listener.setblocking(False)
        yield listener


def test_a_mount_sock_symlink_to_another_socket_is_not_followed(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
    victim_service: socket.socket,
) -> None:
    the_publisher = publisher(state, s3_server)
    service_path = victim_service.getsockname()
    the_publisher.runtime = PlantingRuntime(
        the_publisher.runtime,
        lambda pod: plant(pod.comm_dir, "mount.sock", "symlink", service_path),
    )
    one = spec(state, bucket, "p")

    with pytest.raises(Unavailable, match=r"mount\.sock is not a socket: refusing to connect through it"):
        asyncio.run(the_publisher.publish(one))

    with pytest.raises(BlockingIOError):
        victim_service.accept()  # nobody connected
    assert the_publisher.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]


def test_a_mount_sock_hard_link_to_a_root_service_gets_no_request(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
    victim_service: socket.socket,
) -> None:
    the_publisher = publisher(state, s3_server)
    service_path = victim_service.getsockname()

    def hard_link(pod: MountpointPod) -> None:
        # Root links it, as a mounter could on a node without fs.protected_hardlinks.
        os.rename(pod.socket_path, f"{pod.socket_path}.moved")
        os.link(service_path, pod.socket_path)

    the_publisher.runtime = PlantingRuntime(the_publisher.runtime, hard_link)
    one = spec(state, bucket, "p")

    with pytest.raises(Unavailable, match="served by uid 0, not by the Mountpoint Pod's uid 1000"):
        asyncio.run(the_publisher.publish(one))

    conn, _ = victim_service.accept()  # it connected (that is how SO_PEERCRED is learnt) ...
    with conn:
        conn.settimeout(10)
        data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
        assert (data, fds) == (b"", [])  # ... and hung up: no request, no FUSE fd
    assert the_publisher.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]


def test_the_attacker_really_can_replace_roots_entries_in_the_comm_dir(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
) -> None:
    """The premise of this file: without it the tests above would prove nothing."""
    the_publisher = publisher(state, s3_server)
    one = spec(state, bucket, "p")
    asyncio.run(the_publisher.publish(one))
    pod = the_pod(the_publisher)
    assert os.lstat(pod.credentials_dir).st_uid == 0
    assert plant(pod.comm_dir, "credentials", "symlink", "/") == {"planted": "symlink"}
    assert os.readlink(pod.credentials_dir) == "/"
    moved = [name for name in os.listdir(pod.comm_dir) if name.startswith("credentials.moved-")]
    assert len(moved) == 1 and os.lstat(f"{pod.comm_dir}/{moved[0]}").st_uid == 0  # root's, moved aside
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))

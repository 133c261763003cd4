"""PodMounterPublisher in this process with the local runtime, real FUSE and the real S3 server:
concurrency per key, credentials files, and recovery of what a crashed driver left (needs root)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from s3csi.credentials.files import credentials_file_name
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.errors import InvalidArgument, PermissionDenied, Unavailable
from s3csi.kernel.mount import find_mount, mountinfo, unmount
from s3csi.podmounter.publisher import PodMounterPublisher, PublisherSettings
from s3csi.podmounter.runtime import MountpointPod
from s3csi.podmounter.runtime.local import METRICS_SOCKET, LocalRuntime
from s3csi.s3.credentials import Credentials, StaticCredentials
from s3csi.s3.settings import S3Settings
from s3csi.volume.context import VolumeContext
from s3csi.volume.policy import AccessMode, PolicyInput, effective_mount
from s3csi.volume.publish_spec import PodInfo, PublishSpec
from tests.metrics_support import delta, parse, scrape, value
from tests.polling import wait_until, wait_until_async

pytestmark = pytest.mark.usefixtures("privileged")
SESSION_TOKEN = "s3csi-test-session-token-do-not-leak"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for mount in reversed(mountinfo()):
        if mount.mount_point.startswith(f"{tmp_path}/"):
            unmount(mount.mount_point, lazy=True)
    runtime = LocalRuntime(tmp_path / "state")
    for pod in runtime.list():
        asyncio.run(runtime.retire(pod))


def publisher(
    state: Path, server: EmbeddedS3Server, credentials: Any = None, *, metrics: bool = False
) -> PodMounterPublisher:
    settings = PublisherSettings(
        node_id="node-1",
        state_dir=str(state / "state"),
        kubelet_dir=str(state / "kubelet"),
        s3=S3Settings(region=server.region, endpoint_url=server.endpoint_url, force_path_style=True),
    )
    keys = Credentials(server.access_key_id, server.secret_access_key, session_token=SESSION_TOKEN)
    made = PodMounterPublisher(
        settings, LocalRuntime(settings.state_dir, metrics=metrics), credentials or StaticCredentials(keys)
    )
    made.prepare()
    return made


def spec(
    state: Path,
    bucket: str,
    pod: str,
    fs_group: str = "1001",
    *,
    attributes: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
) -> PublishSpec:
    target = state / "kubelet" / "pods" / pod / "volumes" / "kubernetes.io~csi" / "pv" / "mount"
    target.parent.mkdir(parents=True, exist_ok=True)
    context = VolumeContext.parse({"bucketName": bucket, **(attributes or {})})
    mount = effective_mount(
        PolicyInput(
            mount_flags=["allow-other", *flags],
            volume_mount_group=fs_group,
            fs_user_annotation=None,
            volume_fs_user=None,
            readonly=False,
            access_mode=AccessMode.MULTI_NODE_MULTI_WRITER,
            volume_staged_writes=context.staged_writes,
        )
    )
    return PublishSpec(
        volume_id=bucket,
        target_path=str(target),
        pv_name="pv",
        context=context,
        mount=mount,
        pod=PodInfo("default", pod, f"uid-{pod}", None),
    )


def test_concurrent_publishes_of_one_key_make_one_mountpoint_pod(
    state: Path, s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="shared", Body=b"one mount")
    the_publisher = publisher(state, s3_server)
    specs = [spec(state, bucket, f"pod-{i}") for i in range(6)] + [
        spec(state, bucket, "other", fs_group="2002")
    ]

    async def publish_all() -> None:
        await asyncio.gather(*(the_publisher.publish(s) for s in specs))

    asyncio.run(publish_all())
    assert len(the_publisher.runtime.list()) == 2
    devices = {os.stat(s.target_path).st_dev for s in specs}
    assert len(devices) == 2
    for s in specs:
        with open(f"{s.target_path}/shared", "rb") as file:
            assert file.read() == b"one mount"

    async def unpublish_all() -> None:
        await asyncio.gather(*(the_publisher.unpublish(s.volume_id, s.target_path) for s in specs))

    asyncio.run(unpublish_all())
    assert the_publisher.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]


def test_credentials_reach_the_mounter_as_a_file_only(
    state: Path, s3_server: EmbeddedS3Server, bucket: str
) -> None:
    the_publisher = publisher(state, s3_server)
    one = spec(state, bucket, "p")
    asyncio.run(the_publisher.publish(one))
    [pod] = the_publisher.runtime.list()
    credentials = Path(pod.credentials_dir) / credentials_file_name(one.volume_id, pod.key)
    st = os.stat(credentials)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1000, 0o640)
    assert SESSION_TOKEN in credentials.read_text()
    pid = the_publisher.runtime.pid(pod)  # type: ignore[attr-defined]
    for leak in (f"/proc/{pid}/cmdline", f"/proc/{pid}/environ", "/proc/self/mountinfo"):
        content = Path(leak).read_bytes()
        assert SESSION_TOKEN.encode() not in content and s3_server.secret_access_key.encode() not in content
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))


def test_a_mounter_serves_its_metrics_on_a_socket_in_its_comm_dir(
    state: Path, s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    body = b"m" * 100_000  # above what a lookup fetches whole: the one GET is the open's
    s3.put_object(Bucket=bucket, Key="measured", Body=body)
    the_publisher = publisher(state, s3_server, metrics=True)
    one = spec(state, bucket, "p")
    asyncio.run(the_publisher.publish(one))
    [pod] = the_publisher.runtime.list()
    socket_path = Path(pod.comm_dir) / METRICS_SOCKET
    before = scrape(socket_path)
    assert (Path(one.target_path) / "measured").read_bytes() == body
    after = scrape(socket_path)
    # Labelled with the volume id of the publish (here the bucket's name).
    assert delta(before, after, "s3csi_s3_requests_total", volume_id=one.volume_id, op="GetObject") == 1
    assert delta(
        before, after, "s3csi_s3_transferred_bytes_total", volume_id=one.volume_id, direction="download"
    ) == len(body)
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))
    assert not socket_path.exists()


def test_a_cache_volume_holds_the_read_parts_of_its_mountpoint_pod(
    state: Path, s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    # The local runtime's cache volume of `cache: emptyDir`: a directory on the node's disk in the Mountpoint
    # Pod's comm dir, made before the mounter starts; the mounter's --cache lives there, bounded by the size.
    s3.put_object(Bucket=bucket, Key="data.bin", Body=os.urandom(3 * 2**20))
    the_publisher = publisher(state, s3_server)
    one = spec(state, bucket, "p", attributes={"cache": "emptyDir", "cacheEmptyDirSizeLimit": "128Mi"})
    asyncio.run(the_publisher.publish(one))
    [pod] = the_publisher.runtime.list()
    cache = Path(pod.comm_dir) / "cache"
    st = os.stat(cache)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1000, 0o2770)
    expected = s3.get_object(Bucket=bucket, Key="data.bin")["Body"].read()
    for _ in range(2):
        with open(f"{one.target_path}/data.bin", "rb") as file:
            assert file.read() == expected
    [session] = list(cache.iterdir())  # the mounter's own fresh sub-directory
    assert session.name.startswith("s3csi-cache-") and session.stat().st_uid == 1000
    # Parts are written to disk in the background, after the read that fetched them returned.
    assert wait_until(lambda: sum(part.stat().st_size for part in session.iterdir()) == len(expected))
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))
    assert the_publisher.runtime.list() == []


STAGED_WRITES_ASKED = {  # (attributes, mount options) of a PV with staged writes and a cache volume
    "mount-option": ({"cache": "emptyDir"}, ("staged-writes", "allow-overwrite")),
    "volume-attribute": ({"cache": "emptyDir", "stagedWrites": "true"}, ("allow-overwrite",)),
}


@pytest.mark.parametrize("asked", STAGED_WRITES_ASKED)
def test_staged_writes_keep_their_copies_in_the_cache_volume(
    state: Path, s3_server: EmbeddedS3Server, s3: Any, bucket: str, asked: str
) -> None:
    # Staged writes asked for by the mount option or by the volume attribute: an append through the
    # published target reaches S3.
    s3.put_object(Bucket=bucket, Key="log.txt", Body=b"one\n")
    the_publisher = publisher(state, s3_server)
    attributes, flags = STAGED_WRITES_ASKED[asked]
    one = spec(state, bucket, "p", attributes=attributes, flags=flags)
    asyncio.run(the_publisher.publish(one))
    with open(f"{one.target_path}/log.txt", "a") as file:
        file.write("two\n")
    assert s3.get_object(Bucket=bucket, Key="log.txt")["Body"].read() == b"one\ntwo\n"
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"cache": "emptyDir", "cacheEmptyDirMedium": "Memory", "cacheEmptyDirSizeLimit": "1Gi"},
            "cacheEmptyDirMedium Memory needs --runtime kubernetes",
        ),
        (
            {"cache": "ephemeral", "cacheEphemeralStorageResourceRequest": "1Gi"},
            "volume attribute cache ephemeral needs --runtime kubernetes",
        ),
    ],
)
def test_a_cache_the_local_runtime_cannot_give_is_refused(
    state: Path, s3_server: EmbeddedS3Server, bucket: str, attributes: dict[str, str], message: str
) -> None:
    the_publisher = publisher(state, s3_server)
    with pytest.raises(InvalidArgument, match=message):
        asyncio.run(the_publisher.publish(spec(state, bucket, "p", attributes=attributes)))
    assert the_publisher.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]


class NoCredentials:
    async def get(self) -> Credentials:
        raise PermissionDenied("no AWS credentials found (looked in: environment)")


def test_a_driver_without_credentials_fails_clearly_and_leaves_nothing(
    state: Path, s3_server: EmbeddedS3Server, bucket: str
) -> None:
    the_publisher = publisher(state, s3_server, NoCredentials())
    with pytest.raises(PermissionDenied, match="no AWS credentials"):
        asyncio.run(the_publisher.publish(spec(state, bucket, "p")))
    assert the_publisher.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]


def test_recover_retires_what_a_crash_left_half_done(
    state: Path, s3_server: EmbeddedS3Server, bucket: str
) -> None:
    first = publisher(state, s3_server)
    used, orphan = spec(state, bucket, "used"), spec(state, bucket, "orphan", fs_group="3003")
    asyncio.run(first.publish(used))
    asyncio.run(first.publish(orphan))
    # A crash after the source was mounted but before the bind: the orphan's source serves no target.
    unmount(orphan.target_path)
    # And a Mountpoint Pod started but never given a mount.
    asyncio.run(first.runtime.start("never-mounted"))
    assert len(first.runtime.list()) == 3

    second = publisher(state, s3_server)  # the restarted driver
    asyncio.run(second.recover())
    [kept] = second.runtime.list()
    assert find_mount(used.target_path) is not None and os.listdir(used.target_path) == []
    assert kept.name in {os.path.basename(m.mount_point) for m in mountinfo()}
    asyncio.run(second.unpublish(used.volume_id, used.target_path))
    asyncio.run(second.unpublish(orphan.volume_id, orphan.target_path))
    assert second.runtime.list() == []
    assert not [m for m in mountinfo() if m.mount_point.startswith(f"{state}/")]
    assert os.listdir(state / "state" / "sources") == [] and os.listdir(state / "state" / "targets") == []


class HeldRuntime(LocalRuntime):
    """A local runtime whose Mountpoint Pods never come: each start waits for ``release``, then fails."""

    def __init__(self, state_dir: str) -> None:
        super().__init__(state_dir)
        self.release = asyncio.Event()

    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod:
        await self.release.wait()
        raise Unavailable("no Mountpoint Pod came")


def test_publishes_waiting_for_their_mountpoint_pod_are_counted_while_they_wait(
    state: Path, s3_server: EmbeddedS3Server, bucket: str
) -> None:
    the_publisher = publisher(state, s3_server)
    runtime = HeldRuntime(the_publisher.settings.state_dir)
    the_publisher.runtime = runtime

    def now() -> float:
        samples = parse(generate_latest(the_publisher.metrics.registry).decode())
        return value(samples, "s3csi_node_publishes_waiting")

    async def scenario() -> list[float]:
        specs = [spec(state, bucket, "a", fs_group="1001"), spec(state, bucket, "b", fs_group="2002")]
        publishes = [asyncio.ensure_future(the_publisher.publish(s)) for s in specs]
        assert await wait_until_async(lambda: now() == 2), now()
        seen = [now()]
        runtime.release.set()
        results = await asyncio.gather(*publishes, return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results), results
        return [*seen, now()]

    assert asyncio.run(scenario()) == [2, 0]
    assert the_publisher.served() == 0  # nothing was mounted

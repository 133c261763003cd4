"""NodePublishVolume / NodeUnpublishVolume end to end: gRPC on a unix socket → ``s3csi driver``
(local runtime) → unprivileged Mountpoint Pods → real FUSE → the real S3 server, with workloads as
processes of the pod's users (needs root)."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import run_as
from tests.e2e.node_support import MODE, Node, node
from tests.integration.csi_support import capability, rpc, run
from tests.metrics_support import delta, scrape, value
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")
OK = grpc.StatusCode.OK
FSGROUP_EXAMPLE_OPTIONS = ("uid=1001", "gid=1001", "allow-other")


@pytest.fixture
def the_node(s3_server: EmbeddedS3Server) -> Iterator[Node]:
    with node(s3_server) as n:
        yield n


def stat_errno(path: str) -> int:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno or 0
    return 0


def pod_sh(uid: int, gid: int, groups: list[int], script: str) -> tuple[int, str]:
    result = run_as(uid, gid, ["sh", "-c", script], groups=groups)
    return result.returncode, (result.stdout + result.stderr).decode().strip()


def test_publish_serves_the_pod_and_unpublish_leaves_nothing(the_node: Node, s3: Any, bucket: str) -> None:
    target = the_node.target()
    request = the_node.publish_request(target, bucket, mount_flags=FSGROUP_EXAMPLE_OPTIONS, fs_group=1001)
    before = scrape(the_node.driver.metrics_path)
    assert the_node.publish(request) == (OK, "")
    assert the_node.publish(request) == (OK, "")  # repeated: succeeds, changes nothing
    assert len(the_node.mounters()) == 1
    published = scrape(the_node.driver.metrics_path)
    assert delta(before, published, "s3csi_csi_requests_total", method="NodePublishVolume", code="OK") == 2
    assert value(published, "s3csi_node_mountpoint_pods") == 1
    assert value(published, "s3csi_node_publishes_waiting") == 0
    probe = run(rpc(the_node.driver.socket_path, "Identity", "Probe", csi_pb2.ProbeRequest()))
    assert probe.ready.value is True  # the socket, /dev/fuse, the state dir and S3 all usable

    status, output = pod_sh(
        1001, 1001, [1001], f"echo hello > {target}/test.txt && stat -c '%u %g %a' {target}/test.txt"
    )
    assert (status, output) == (0, "1001 1001 660")
    assert s3.get_object(Bucket=bucket, Key="test.txt")["Body"].read() == b"hello\n"
    status, output = pod_sh(2000, 2000, [], f"cat {target}/test.txt")  # neither owner nor in the group
    assert status != 0 and "Permission denied" in output

    assert the_node.unpublish(target) == (OK, "")
    assert the_node.unpublish(target) == (OK, "")  # repeated: succeeds
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()
    after = scrape(the_node.driver.metrics_path)
    assert delta(published, after, "s3csi_csi_requests_total", method="NodeUnpublishVolume", code="OK") == 2
    assert delta(before, after, "s3csi_csi_request_duration_seconds_count", method="NodePublishVolume") == 2
    assert value(after, "s3csi_node_mountpoint_pods") == 0
    assert value(after, "s3csi_node_recoveries_total", result="recovered") == 0


def test_read_only_publish_refuses_writers_with_erofs(the_node: Node, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="data.txt", Body=b"read me")
    target = the_node.target()
    assert the_node.publish(the_node.publish_request(target, bucket, readonly=True, fs_group=1001)) == (
        OK,
        "",
    )
    with open(f"{target}/data.txt", "rb") as file:
        assert file.read() == b"read me"
    with pytest.raises(OSError) as raised:
        open(f"{target}/new.txt", "wb").close()
    assert raised.value.errno == errno.EROFS
    # The same target asked for read-write now: published with incompatible options.
    code, details = the_node.publish(the_node.publish_request(target, bucket, fs_group=1001))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "already published" in details
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_equal_keys_share_a_mountpoint_pod_and_any_difference_gets_its_own(
    the_node: Node, s3: Any, bucket: str
) -> None:
    variants: list[dict[str, Any]] = [
        {"fs_group": 1001},
        {"fs_group": 1001},  # equal to the first: shares
        {"fs_group": 1002},  # another fsGroup
        {"fs_group": 1001, "readonly": True},  # read-only
        {"fs_group": 1001, "mount_flags": ("allow-delete",)},  # other options
        {"fs_group": 1001, "attributes": {"fsUser": "1003"}},  # fsUser
    ]
    targets = [the_node.target() for _ in variants]
    for target, variant in zip(targets, variants, strict=True):
        assert the_node.publish(the_node.publish_request(target, bucket, **variant)) == (OK, "")
    assert len(the_node.mounters()) == 5
    assert os.stat(targets[0]).st_dev == os.stat(targets[1]).st_dev  # one FUSE mount, two binds
    assert len({os.stat(t).st_dev for t in targets}) == 5

    s3.put_object(Bucket=bucket, Key="f", Body=b"x")
    assert pod_sh(1001, 1001, [1001], f"stat -c '%g %a' {targets[0]}/f") == (0, "1001 660")
    assert pod_sh(1002, 1002, [1002], f"stat -c '%g %a' {targets[2]}/f") == (0, "1002 660")
    assert pod_sh(1003, 1003, [1001], f"stat -c '%u %g %a' {targets[5]}/f") == (0, "1003 1001 660")

    assert the_node.unpublish(targets[0]) == (OK, "")
    assert len(the_node.mounters()) == 5  # the second pod still uses the shared one
    with open(f"{targets[1]}/f", "rb") as file:
        assert file.read() == b"x"
    for target in targets[1:]:
        assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_fs_user_without_fs_group_gets_owner_only_files(the_node: Node, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="id_rsa", Body=b"key")
    target = the_node.target()
    request = the_node.publish_request(target, bucket, attributes={"fsUser": "1005"})
    assert the_node.publish(request) == (OK, "")
    assert pod_sh(1005, 1005, [], f"stat -c '%u %a' {target}/id_rsa && cat {target}/id_rsa") == (
        0,
        "1005 600\nkey",
    )
    assert pod_sh(1006, 1005, [1005], f"cat {target}/id_rsa")[0] != 0  # group gets nothing
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"volume_id": ""}, INVALID, "volume_id is required"),
        ({"target_path": ""}, INVALID, "target_path is required"),
        ({"target_path": "/etc/s3csi-target"}, INVALID, "kubelet directory"),
        ({"target_path": "{kubelet}/escape/mount"}, INVALID, "not inside the kubelet directory"),
        ({"volume_capability": None}, INVALID, "volume_capability is required"),
        ({"block": True}, INVALID, "block access"),
        ({"mode": MODE.SINGLE_NODE_SINGLE_WRITER}, INVALID, "SINGLE_NODE_SINGLE_WRITER"),
        ({"volume_context": {}}, INVALID, "bucketName is required"),
        ({"mount_flags": ("endpoint-url=http://evil",)}, INVALID, "endpoint-url"),
        ({"mount_flags": ("uid=-1",)}, INVALID, "uid"),
        ({"mount_flags": ("prefix=a/",), "attributes": {"prefix": "b/"}}, INVALID, "prefix"),
        ({"fs_group": "x"}, INVALID, "fsGroup"),
        (
            {
                "attributes": {"authenticationSource": "secret"},
                "secrets": {"access_key_id": "AK" * 65, "secret_access_key": "S"},
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "access_key_id is longer than 128",
        ),
        ({"bucket": "no-such-bucket-s3csi"}, grpc.StatusCode.NOT_FOUND, "no-such-bucket-s3csi"),
    ],
)
def test_bad_publish_requests_get_their_code_and_leave_nothing(
    the_node: Node, bucket: str, fields: dict[str, Any], code: grpc.StatusCode, message: str
) -> None:
    os.symlink("/tmp", the_node.kubelet_dir / "escape")
    target = the_node.target()
    fields = dict(fields)
    request_bucket = fields.pop("bucket", bucket)
    overrides: dict[str, Any] = {}
    if "target_path" in fields:
        overrides["target_path"] = fields.pop("target_path").format(kubelet=the_node.kubelet_dir)
    if "volume_context" in fields:
        overrides["volume_context"] = fields.pop("volume_context")
    if "volume_capability" in fields:
        fields.pop("volume_capability")
        overrides["volume_capability"] = None
    for key in ("volume_id", "secrets"):
        if key in fields:
            overrides[key] = fields.pop(key)
    block = fields.pop("block", False)
    fs_group = fields.pop("fs_group", None)
    request = the_node.publish_request(target, request_bucket, **fields, **overrides)
    if block:
        request.volume_capability.CopyFrom(
            request.volume_capability.__class__(
                block=request.volume_capability.BlockVolume(),
                access_mode=request.volume_capability.access_mode,
            )
        )
    if fs_group is not None:
        request.volume_capability.mount.volume_mount_group = fs_group
    got, details = the_node.publish(request)
    assert got == code and message in details, details
    assert "S" not in details.split() and "AK" not in details.split()
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_kill_9_of_the_driver_disturbs_no_mount_and_a_new_driver_cleans_up(
    the_node: Node, s3: Any, bucket: str
) -> None:
    targets = [the_node.target() for _ in range(2)]
    for target in targets:
        assert the_node.publish(the_node.publish_request(target, bucket, fs_group=1001)) == (OK, "")
    mounters = the_node.mounters()
    the_node.kill_driver()

    # The pods carry on: reads and writes go through the Mountpoint Pod, which outlives the driver.
    assert pod_sh(
        1001, 1001, [1001], f"echo after-kill > {targets[0]}/after.txt && cat {targets[1]}/after.txt"
    ) == (
        0,
        "after-kill",
    )
    assert s3.get_object(Bucket=bucket, Key="after.txt")["Body"].read() == b"after-kill\n"
    assert the_node.mounters() == mounters

    the_node.start_driver()  # replaces the stale socket; finds its Mountpoint Pod in state dir + mount table
    assert the_node.mounters() == mounters
    assert the_node.publish(the_node.publish_request(targets[1], bucket, fs_group=1001)) == (OK, "")
    for target in targets:
        assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_a_dead_mountpoint_pod_is_replaced_for_the_next_pod(the_node: Node, s3: Any, bucket: str) -> None:
    """A session that cannot be remounted where it is (here: mounted by a driver that kept no record of
    how, as before crash recovery existed) is replaced for the next pod; its old targets stay broken
    until kubelet publishes them again. tests/e2e/test_mounter_recovery.py covers the remount."""
    old, new, abandoned = the_node.target(), the_node.target(), the_node.target()
    assert the_node.publish(the_node.publish_request(old, bucket, fs_group=1001)) == (OK, "")
    assert the_node.publish(the_node.publish_request(abandoned, bucket, fs_group=1001)) == (OK, "")
    for record in (the_node.state_dir / "sessions").iterdir():
        record.unlink()
    [dead] = the_node.mounters()
    os.kill(dead, signal.SIGKILL)
    assert wait_until(lambda: dead not in the_node.mounters())
    # The old target fails (once the kernel's attribute cache of its root expires); nothing fakes it.
    assert wait_until(lambda: stat_errno(old) == errno.ENOTCONN), stat_errno(old)

    assert the_node.publish(the_node.publish_request(new, bucket, fs_group=1001)) == (OK, "")
    [fresh] = the_node.mounters()
    assert fresh != dead
    assert pod_sh(1001, 1001, [1001], f"echo fresh > {new}/fresh.txt") == (0, "")
    assert s3.get_object(Bucket=bucket, Key="fresh.txt")["Body"].read() == b"fresh\n"
    log = the_node.driver.log()
    assert "Mountpoint Pod is gone" in log and old in log and "default/pod-1" in log and bucket in log
    assert stat_errno(old) == errno.ENOTCONN  # nothing repaired the old target behind kubelet's back

    # kubelet, finding the old target broken, publishes it again: it gets the fresh mount.
    assert the_node.publish(the_node.publish_request(old, bucket, fs_group=1001)) == (OK, "")
    assert the_node.mounters() == [fresh]
    assert pod_sh(1001, 1001, [1001], f"cat {old}/fresh.txt") == (0, "fresh")

    assert stat_errno(abandoned) == errno.ENOTCONN
    for target in (old, new, abandoned):  # the abandoned one is a bind of a source long gone
        assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_the_csi_sanity_node_workflow(the_node: Node, s3: Any) -> None:
    """What csi-sanity's Node specs do: CreateVolume, NodePublishVolume (twice) at a target that does
    not exist yet, NodeUnpublishVolume (twice) removes it, DeleteVolume."""
    single_writer = capability(MODE.SINGLE_NODE_WRITER)
    created = run(
        rpc(
            the_node.driver.socket_path,
            "Controller",
            "CreateVolume",
            csi_pb2.CreateVolumeRequest(name="sanity-node-full", volume_capabilities=[single_writer]),
        )
    ).volume
    parent = the_node.kubelet_dir / "csi-mount"
    parent.mkdir()
    target = str(parent / "target")
    publish = csi_pb2.NodePublishVolumeRequest(
        volume_id=created.volume_id,
        target_path=target,
        volume_capability=single_writer,
        volume_context=created.volume_context,
    )
    for _ in range(2):
        assert the_node.publish(publish) == (OK, "")
        assert os.path.ismount(target)
    assert len(the_node.mounters()) == 1
    for _ in range(2):
        assert the_node.unpublish(target, created.volume_id) == (OK, "")
        assert not os.path.exists(target)
    request = csi_pb2.DeleteVolumeRequest(volume_id=created.volume_id)
    run(rpc(the_node.driver.socket_path, "Controller", "DeleteVolume", request))
    assert created.volume_context["bucketName"] not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()

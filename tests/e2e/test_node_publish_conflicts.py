"""NodeUnpublishVolume and NodePublishVolume asked to act on a target they must leave alone, as a hostile
or mistaken CSI caller would: another volume's id, a directory the driver never made, a republish with
another fsGroup. Each runs against the real driver (local runtime, real FUSE, real S3 server); the
victim's mount, directory and files are checked unchanged afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import run_as
from tests.e2e.node_support import Node, node
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")
OK = grpc.StatusCode.OK


@pytest.fixture
def the_node(s3_server: EmbeddedS3Server) -> Iterator[Node]:
    with node(s3_server, prefix="s3csi-conflicts-") as n:
        yield n


def group_of(path: str) -> str:
    return run_as(0, 0, ["stat", "-c", "%g", path], check=True).stdout.decode().strip()


def test_unpublish_naming_another_volume_unmounts_nothing(the_node: Node, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="data.txt", Body=b"victim's data")
    victim, other = the_node.target(), the_node.target()
    assert the_node.publish(the_node.publish_request(victim, bucket, volume_id="victim-volume")) == (OK, "")
    assert the_node.publish(the_node.publish_request(other, bucket, volume_id="other-volume")) == (OK, "")

    for _ in range(2):  # called twice: refused twice, nothing changes
        status, details = the_node.unpublish(victim, "other-volume")
        assert status == grpc.StatusCode.FAILED_PRECONDITION
        assert "holds volume 'victim-volume', not 'other-volume'" in details
        assert os.path.ismount(victim)
        with open(f"{victim}/data.txt", "rb") as file:
            assert file.read() == b"victim's data"

    for target in (victim, other):
        for _ in range(2):
            assert the_node.unpublish(target) == (OK, "")
        assert not os.path.exists(target)  # made by the driver, so removed by it
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_unpublish_never_removes_a_directory_the_driver_did_not_make(the_node: Node, bucket: str) -> None:
    never_published = the_node.target()
    os.mkdir(never_published)
    for _ in range(2):
        assert the_node.unpublish(never_published, "any-volume") == (OK, "")
    assert os.path.isdir(never_published)

    # A target kubelet (or anyone) made before the publish stays after the unpublish, empty as before.
    premade = the_node.target()
    os.mkdir(premade)
    assert the_node.publish(the_node.publish_request(premade, bucket)) == (OK, "")
    assert os.path.ismount(premade)
    for _ in range(2):
        assert the_node.unpublish(premade) == (OK, "")
    assert os.path.isdir(premade) and not os.path.ismount(premade) and not os.listdir(premade)
    os.rmdir(premade)
    os.rmdir(never_published)
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_republish_with_another_fs_group_is_refused_and_the_old_group_stays(
    the_node: Node, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"x")
    target = the_node.target()
    first = the_node.publish_request(target, bucket, fs_group=1001)
    assert the_node.publish(first) == (OK, "")
    for fields in ({"fs_group": 1002}, {"fs_group": None}):
        for _ in range(2):
            status, details = the_node.publish(the_node.publish_request(target, bucket, **fields))
            assert status == grpc.StatusCode.ALREADY_EXISTS, details
            assert "already published with group 1001" in details
        assert group_of(f"{target}/f") == "1001"
    assert the_node.publish(first) == (OK, "")  # the same request again is fine
    assert len(the_node.mounters()) == 1
    for _ in range(2):
        assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()

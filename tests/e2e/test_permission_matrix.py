"""Who may read, write, create and list in a published volume, checked through the kernel: a real
NodePublishVolume (local runtime, real FUSE mount, real S3 server), then the pod's users as real
unprivileged processes — the owner, a member of the group, and other uids, among them 1000 (the
Mountpoint Pod's uid, and a common image user) and 65534 (nobody). See docs/ownership.md, "Default
owner and the permission matrix"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import run_as
from tests.e2e.node_support import Node, node
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")

OPERATIONS = ("read", "write", "create", "list")
ALL = frozenset(OPERATIONS)
NONE: frozenset[str] = frozenset()

# (uid, gid, supplementary groups) of each kind of user.
GROUP_MEMBER = (2001, 2001, (1001,))  # in the fsGroup 1001, not the owner
MOUNTER_UID = (1000, 1000, ())  # the Mountpoint Pod's uid, which images commonly run as too
NOBODY = (65534, 65534, ())
STRANGER = (2002, 2002, ())
FS_USER = (1005, 1005, ())
ROOT = (0, 0, ())

CASES: dict[str, dict[str, Any]] = {
    # The publish: fsGroup, fsUser (volume attribute); then what each user may do.
    "fsGroup": {
        "fs_group": 1001,
        "attributes": {},
        "owner": "0 1001",
        "access": {ROOT: ALL, GROUP_MEMBER: ALL, MOUNTER_UID: NONE, NOBODY: NONE, STRANGER: NONE},
    },
    "fsUser": {
        "fs_group": None,
        "attributes": {"fsUser": "1005"},
        "owner": "1005 1000",
        "access": {FS_USER: ALL, GROUP_MEMBER: NONE, MOUNTER_UID: NONE, NOBODY: NONE, STRANGER: NONE},
    },
    "both": {
        "fs_group": 1001,
        "attributes": {"fsUser": "1005"},
        "owner": "1005 1001",
        "access": {FS_USER: ALL, GROUP_MEMBER: ALL, MOUNTER_UID: NONE, NOBODY: NONE, STRANGER: NONE},
    },
    # No fsGroup, no fsUser, no allow-other: the node plugin (root) mounted the FUSE session, and
    # without allow_other the kernel lets in only that uid — the volume is root's alone, whoever the
    # files are reported to belong to.
    "neither": {
        "fs_group": None,
        "attributes": {},
        "owner": "1000 1000",
        "access": {ROOT: ALL, MOUNTER_UID: NONE, GROUP_MEMBER: NONE, NOBODY: NONE, STRANGER: NONE},
    },
}

# One line per operation, "name=0|1", each attempted by the user itself through the kernel.
SCRIPT = """
try() {{ if out=$(sh -c "$2" 2>&1 >/dev/null); then echo "$1=1"; else echo "$1=0"; echo "$1: $out" >&2; fi; }}
try read 'cat {t}/existing.txt'
try write 'printf "by {uid}" > {t}/existing.txt'
try create 'printf new > {t}/new-{uid}.txt'
try list 'ls {t}/dir'
"""


@pytest.fixture(scope="module")
def the_node(s3_server: EmbeddedS3Server) -> Iterator[Node]:
    with node(s3_server, prefix="s3csi-matrix-") as n:
        yield n


def allowed(user: tuple[int, int, tuple[int, ...]], target: str) -> frozenset[str]:
    uid, gid, groups = user
    result = run_as(uid, gid, ["sh", "-c", SCRIPT.format(t=target, uid=uid)], groups=groups)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=") for line in result.stdout.decode().split())
    return frozenset(op for op in OPERATIONS if lines[op] == "1")


@pytest.mark.parametrize("case", sorted(CASES))
def test_permission_matrix_through_the_kernel(the_node: Node, s3: Any, bucket: str, case: str) -> None:
    setup = CASES[case]
    s3.put_object(Bucket=bucket, Key="existing.txt", Body=b"original")
    s3.put_object(Bucket=bucket, Key="dir/inside.txt", Body=b"x")
    target = the_node.target()
    request = the_node.publish_request(
        target,
        bucket,
        mount_flags=("allow-overwrite",),
        fs_group=setup["fs_group"],
        attributes=setup["attributes"],
    )
    assert the_node.publish(request) == (grpc.StatusCode.OK, "")
    found = {user: allowed(user, target) for user in setup["access"]}
    assert found == setup["access"]
    owner = run_as(0, 0, ["stat", "-c", "%u %g", f"{target}/dir"], check=True)
    assert owner.stdout.decode().strip() == setup["owner"]

    # The data shows only what the allowed users did.
    writers = {user[0] for user, ops in setup["access"].items() if "write" in ops}
    body = s3.get_object(Bucket=bucket, Key="existing.txt")["Body"].read().decode()
    assert body in {f"by {uid}" for uid in writers}
    creators = {user[0] for user, ops in setup["access"].items() if "create" in ops}
    created = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="new-").get("Contents", [])}
    assert created == {f"new-{uid}.txt" for uid in creators}

    assert the_node.unpublish(target, request.volume_id) == (grpc.StatusCode.OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()

"""Credentials end to end: ``s3csi driver`` (local runtime) against moto with IAM enforcement, STS through the
web-identity front (tests/integration/iam_support.py), workloads as unprivileged processes on real FUSE.

- ``authenticationSource: pod``: two pods in different service accounts mount the same bucket with their own
  roles; one may write, the other gets EACCES; a role that does not trust the pod's service account fails
  NodePublishVolume with PERMISSION_DENIED.
- ``authenticationSource: secret``: the keys rotate on republish (CSIDriver ``requiresRepublish``), the old
  key is deleted in IAM, and reads go on without a remount.
- Afterwards no secret value is in the driver's or the mounters' logs, any process's argv, the mount table or
  an RPC's error.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from s3csi.credentials.files import CREDENTIALS_FILE
from s3csi.s3 import Credentials
from tests.conftest import run_as
from tests.e2e.node_support import Node, iam_node
from tests.integration.iam_support import IamWorld, WebIdentityFront, bucket_policy, every_argv, iam_world
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")
OK = grpc.StatusCode.OK
FS_GROUP = 3000
WORKLOAD = 3001
READ = ["s3:GetObject", "s3:ListBucket"]
ERRORS: list[str] = []
LOGS: list[str] = []


@dataclass
class Cluster:
    world: IamWorld
    front: WebIdentityFront
    node: Node
    bucket: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with iam_world() as world:
        front = WebIdentityFront(world)
        bucket = world.bucket(f"e2e-creds-{uuid.uuid4().hex[:10]}")
        world.client("s3").put_object(Bucket=bucket, Key="shared.txt", Body=b"shared data\n")
        # --debug: every request is logged (redacted): the redaction test searches those lines too.
        try:
            with iam_node(world, front, ["--debug"], prefix="s3csi-e2e-creds-") as the_node:
                yield Cluster(world, front, the_node, bucket)
        finally:
            front.stop()


def keep_logs(cluster: Cluster) -> None:
    """The mounters' logs, read before unpublishing (retiring a Mountpoint Pod removes its log)."""
    LOGS.extend(p.read_text(errors="replace") for p in cluster.node.state_dir.glob("pods/*/mounter.log"))


def publish(
    cluster: Cluster, target: str, volume_id: str, attributes: dict[str, str], **fields: Any
) -> tuple[Any, str]:
    request = cluster.node.publish_request(
        target, cluster.bucket, volume_id=volume_id, fs_group=FS_GROUP, attributes=attributes, **fields
    )
    code, details = cluster.node.publish(request)
    ERRORS.append(details)
    return code, details


def pod_sh(script: str) -> tuple[int, str]:
    result = run_as(WORKLOAD, WORKLOAD, ["sh", "-c", script], groups=[FS_GROUP])
    return result.returncode, (result.stdout + result.stderr).decode().strip()


WRITE = """
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o660)
    os.write(fd, b"from a pod\\n")
    os.close(fd)  # S3 gets the object here: a refused upload fails the close
except OSError as exc:
    print(errno.errorcode[exc.errno], exc.errno)
    sys.exit(1)
"""


def pod_write(path: str) -> tuple[int, str]:
    """Create and write ``path`` as the workload; the errno name and number of the first failing call."""
    result = run_as(WORKLOAD, WORKLOAD, [sys.executable, "-c", WRITE, path], groups=[FS_GROUP])
    return result.returncode, (result.stdout + result.stderr).decode().strip()


def pod_attributes(cluster: Cluster, namespace: str, service_account: str, role: str) -> dict[str, str]:
    token = cluster.front.mint(namespace, service_account)
    return {
        "authenticationSource": "pod",
        "roleArn": role,
        "csi.storage.k8s.io/pod.namespace": namespace,
        "csi.storage.k8s.io/serviceAccount.name": service_account,
        "csi.storage.k8s.io/serviceAccount.tokens": cluster.front.tokens_json(token),
    }


def test_pods_with_their_own_roles_get_their_own_permissions(cluster: Cluster) -> None:
    world, front = cluster.world, cluster.front
    reader_role = world.role("e2e-reader", bucket_policy(cluster.bucket, READ))
    writer_role = world.role("e2e-writer", bucket_policy(cluster.bucket, ["s3:*"]))
    front.allow(reader_role, "team-a", "reader")
    front.allow(writer_role, "team-b", "writer")
    reader = cluster.node.target("pv-reader")
    writer = cluster.node.target("pv-writer")
    assert publish(
        cluster, reader, "vol-reader", pod_attributes(cluster, "team-a", "reader", reader_role)
    ) == (OK, "")
    assert publish(
        cluster, writer, "vol-writer", pod_attributes(cluster, "team-b", "writer", writer_role)
    ) == (OK, "")
    assert len(cluster.node.mounters()) == 2  # other service accounts never share a Mountpoint Pod
    for pid in cluster.node.mounters():  # the keys reach a mounter as a file only, not in its environment
        environment = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert not [value for value in world.secret_values if value in environment]

    assert pod_sh(f"cat {reader}/shared.txt") == (0, "shared data")
    assert pod_sh(f"cat {writer}/shared.txt") == (0, "shared data")
    assert pod_sh(f"echo from-b > {writer}/from-b.txt")[0] == 0
    assert (
        world.client("s3").get_object(Bucket=cluster.bucket, Key="from-b.txt")["Body"].read() == b"from-b\n"
    )
    status, output = pod_write(f"{reader}/from-a.txt")
    assert (status, output) == (1, f"EACCES {errno.EACCES}"), output

    # team-a's token asking for the writer's role: STS refuses, and NodePublishVolume says so.
    stolen = cluster.node.target("pv-writer")
    code, details = publish(
        cluster, stolen, "vol-writer", pod_attributes(cluster, "team-a", "reader", writer_role)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert "AccessDenied" in details

    # Each Mountpoint Pod has its own credentials file, private to the mounter.
    files = sorted(cluster.node.state_dir.glob(f"pods/*/comm/credentials/{CREDENTIALS_FILE}-*"))
    assert len(files) == 2
    for path in files:
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, 1000)

    # kubelet's periodic republish brings a new token: new keys in the file, no remount, reads go on.
    mounts = cluster.node.mounts()
    before = {path: path.read_text() for path in files}
    again = pod_attributes(cluster, "team-a", "reader", reader_role)
    assert publish(cluster, reader, "vol-reader", again) == (OK, "")
    assert cluster.node.mounts() == mounts
    assert sum(path.read_text() != text for path, text in before.items()) == 1
    assert pod_sh(f"cat {reader}/shared.txt") == (0, "shared data")

    keep_logs(cluster)
    for target in (reader, writer, stolen):
        assert cluster.node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not cluster.node.leftovers()), cluster.node.leftovers()


def test_secret_keys_rotate_on_republish_without_a_remount(cluster: Cluster) -> None:
    world = cluster.world
    user = f"rotating-{uuid.uuid4().hex[:6]}"
    old = world.user(user, bucket_policy(cluster.bucket, READ))
    target = cluster.node.target("pv-secret")

    def secret_publish(keys: Credentials) -> tuple[Any, str]:
        secrets = {"access_key_id": keys.access_key_id, "secret_access_key": keys.secret_access_key}
        return publish(cluster, target, "vol-secret", {"authenticationSource": "secret"}, secrets=secrets)

    assert secret_publish(old) == (OK, "")
    assert pod_sh(f"cat {target}/shared.txt") == (0, "shared data")
    mounts_before = cluster.node.mounts()
    (credentials_file,) = cluster.node.state_dir.glob(f"pods/*/comm/credentials/{CREDENTIALS_FILE}-*")
    written_before = credentials_file.stat().st_ino

    new = world.access_key(user)
    assert secret_publish(new) == (OK, "")  # kubelet's periodic republish, with the Secret updated
    world.delete_access_key(user, old.access_key_id)
    assert cluster.node.mounts() == mounts_before  # no remount
    assert credentials_file.stat().st_ino != written_before  # rewritten (atomically: a new inode)
    assert pod_sh(f"cat {target}/shared.txt") == (0, "shared data")
    assert pod_sh(f"ls {target}") == (0, "from-b.txt\nshared.txt")

    # A volume that asked for a secret and got none fails; the driver's keys are not used instead.
    other = cluster.node.target("pv-nosecret")
    code, details = publish(cluster, other, "vol-nosecret", {"authenticationSource": "secret"})
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details

    keep_logs(cluster)
    assert cluster.node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not cluster.node.leftovers()), cluster.node.leftovers()
    assert not credentials_file.exists()


def test_a_wrong_secret_fails_node_publish_with_permission_denied(cluster: Cluster) -> None:
    """Known at publish time: the Mountpoint Pod lists the bucket before it answers ready."""
    user = cluster.world.user(f"wrong-{uuid.uuid4().hex[:6]}", bucket_policy(cluster.bucket, READ))
    forged = "not-the-secret-" + uuid.uuid4().hex
    cluster.world.secret_values.add(forged)
    target = cluster.node.target("pv-wrong")
    secrets = {"access_key_id": user.access_key_id, "secret_access_key": forged}
    code, details = publish(cluster, target, "vol-wrong", {"authenticationSource": "secret"}, secrets=secrets)
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert "SignatureDoesNotMatch" in details
    assert not os.path.ismount(target)
    keep_logs(cluster)
    assert wait_until(lambda: not cluster.node.leftovers()), cluster.node.leftovers()


def test_no_secret_value_in_logs_argv_mounts_or_errors(cluster: Cluster) -> None:
    values = {value for value in cluster.world.secret_values if len(value) >= 8}
    assert len(values) > 5
    keep_logs(cluster)
    logs = [driver.log() for driver in cluster.node.drivers] + LOGS
    places = {
        "logs": "\n".join(logs),
        "argv": every_argv(),
        "mounts": Path("/proc/self/mountinfo").read_text(),
        "errors": "\n".join(ERRORS),
    }
    assert "credentials from" in places["logs"]
    for value in values:
        for place, text in places.items():
            assert value not in text, f"a secret value appears in the {place}"

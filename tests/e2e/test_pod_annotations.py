"""Pod and service-account annotations end to end: ``s3csi driver --mode all --kube-api-url …
--kube-token-file … --kube-ca-file …`` (local runtime) reads them from a fake Kubernetes API server over
HTTPS (objects validated with kubernetes-validate), against moto with IAM enforcement and STS through the
web-identity front; workloads are unprivileged processes on real FUSE.

- ``s3csi.io/fs-user: "1005"`` on a pod without fsGroup: owner-only files owned by 1005; an invalid value is
  INVALID_ARGUMENT naming the annotation; a pod recreated under the same name (another uid) is ABORTED.
- ``authenticationSource: pod`` without ``roleArn``: the role of the service account's
  ``eks.amazonaws.com/role-arn`` annotation, with that role's permissions.
- ``--kube-api off``: the annotations have no effect, as documented, and the API is never asked.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import run_as
from tests.e2e.node_support import Node, iam_node
from tests.integration.iam_support import IamWorld, WebIdentityFront, bucket_policy, iam_world
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod, service_account
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")
OK = grpc.StatusCode.OK
NAMESPACE = "team-a"
FS_USER = "s3csi.io/fs-user"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


@dataclass
class Cluster:
    world: IamWorld
    front: WebIdentityFront
    api: FakeKubeApi
    bucket: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with iam_world() as world:
        front = WebIdentityFront(world)
        api_dir = Path(tempfile.mkdtemp(prefix="s3csi-fake-api-"))
        api = FakeKubeApi(api_dir)
        try:
            bucket = world.bucket(f"e2e-kube-{uuid.uuid4().hex[:10]}")
            world.client("s3").put_object(Bucket=bucket, Key="id_rsa", Body=b"key\n")
            yield Cluster(world, front, api, bucket)
        finally:
            api.stop()
            front.stop()
            shutil.rmtree(api_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def node(cluster: Cluster) -> Iterator[Node]:
    with iam_node(
        cluster.world, cluster.front, cluster.api.driver_args(), prefix="s3csi-e2e-kube-"
    ) as the_node:
        yield the_node


def publish_pod(
    cluster: Cluster,
    node: Node,
    target: str,
    *,
    annotations: dict[str, str] | None = None,
    account: str | None = None,
    uid_in_request: str | None = None,
    attributes: dict[str, str] | None = None,
    **fields: Any,
) -> tuple[grpc.StatusCode, str]:
    """Register the target's pod with the API (as the API server knows it), then NodePublishVolume as kubelet
    sends it (``uid_in_request``: the uid of another pod of the same name)."""
    name = os.path.basename(target.split("/volumes/", 1)[0])
    found = cluster.api.add(pod(NAMESPACE, name, annotations=annotations, service_account=account))
    pod_info = {
        "csi.storage.k8s.io/pod.namespace": NAMESPACE,
        "csi.storage.k8s.io/pod.name": name,
        "csi.storage.k8s.io/pod.uid": uid_in_request or found["metadata"]["uid"],
        "csi.storage.k8s.io/serviceAccount.name": account or "default",
    }
    request = node.publish_request(
        target, cluster.bucket, attributes={**pod_info, **(attributes or {})}, **fields
    )
    return node.publish(request)


def ls_ln(target: str) -> list[tuple[str, str]]:
    """``ls -ln`` through the target, as root: (mode, owner uid) of each entry."""
    result = run_as(0, 0, ["ls", "-ln", target])
    lines = result.stdout.decode().splitlines()[1:]  # "total N" first
    return [(line.split()[0], line.split()[2]) for line in lines]


def pod_sh(uid: int, script: str, groups: list[int] | None = None) -> tuple[int, str]:
    result = run_as(uid, uid, ["sh", "-c", script], groups=groups or [])
    return result.returncode, (result.stdout + result.stderr).decode().strip()


def test_fs_user_annotation_gives_that_user_owner_only_files(cluster: Cluster, node: Node) -> None:
    target = node.target("pv-fs-user")
    assert publish_pod(cluster, node, target, annotations={FS_USER: "1005"}) == (OK, "")
    assert ls_ln(target) == [("-rw-------", "1005")]
    assert pod_sh(1005, f"cat {target}/id_rsa") == (0, "key")
    status, output = pod_sh(1006, f"cat {target}/id_rsa")
    assert status != 0 and "Permission denied" in output
    # The annotation changed on the running pod: kubelet's periodic republish succeeds and remounts nothing;
    # the mount keeps the owner it was made with (a new pod gets the new one).
    name = os.path.basename(target.split("/volumes/", 1)[0])
    edited = cluster.api.get("Pod", NAMESPACE, name)
    edited["metadata"]["annotations"] = {FS_USER: "1006"}
    cluster.api.add(edited)
    request = node.publish_request(
        target,
        cluster.bucket,
        attributes={
            "csi.storage.k8s.io/pod.namespace": NAMESPACE,
            "csi.storage.k8s.io/pod.name": name,
            "csi.storage.k8s.io/pod.uid": edited["metadata"]["uid"],
            "csi.storage.k8s.io/serviceAccount.name": "default",
        },
    )
    assert node.publish(request) == (OK, "")
    assert ls_ln(target) == [("-rw-------", "1005")]
    assert node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not node.leftovers()), node.leftovers()
    log = node.driver.log()
    assert f"Kubernetes API at {cluster.api.url}" in log
    assert cluster.api.token not in log


def test_an_invalid_annotation_or_another_pods_uid_is_refused(cluster: Cluster, node: Node) -> None:
    target = node.target("pv-invalid")
    code, details = publish_pod(cluster, node, target, annotations={FS_USER: "uid=1;rm"})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and f"pod annotation {FS_USER}" in details, details
    # kubelet mounts for the pod it knows; the API has a pod of that name with another uid (recreated).
    recreated = node.target("pv-recreated")
    code, details = publish_pod(
        cluster, node, recreated, annotations={FS_USER: "1005"}, uid_in_request=str(uuid.uuid4())
    )
    assert code == grpc.StatusCode.ABORTED and "recreated" in details, details
    assert not os.path.ismount(target) and not os.path.ismount(recreated)
    assert wait_until(lambda: not node.leftovers()), node.leftovers()


WRITE = """
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"from a pod\\n")
    os.close(fd)  # S3 gets the object here: a refused upload fails the close
except OSError as exc:
    print(errno.errorcode[exc.errno])
    sys.exit(1)
"""


def test_pod_role_comes_from_the_service_account_annotation(cluster: Cluster, node: Node) -> None:
    world, front = cluster.world, cluster.front
    reader_role = world.role(
        f"kube-reader-{uuid.uuid4().hex[:6]}",
        bucket_policy(cluster.bucket, ["s3:GetObject", "s3:ListBucket"]),
    )
    front.allow(reader_role, NAMESPACE, "reader")
    cluster.api.add(service_account(NAMESPACE, "reader", {ROLE_ANNOTATION: reader_role}))
    cluster.api.add(service_account(NAMESPACE, "plain"))

    def pod_attributes(account: str) -> dict[str, str]:
        token = front.mint(NAMESPACE, account)
        return {
            "authenticationSource": "pod",
            "csi.storage.k8s.io/serviceAccount.tokens": front.tokens_json(token),
        }

    target = node.target("pv-role")
    annotations = {FS_USER: "3001"}
    code, details = publish_pod(
        cluster, node, target, annotations=annotations, account="reader", attributes=pod_attributes("reader")
    )
    assert (code, details) == (OK, "")
    exchanges = len(front.exchanges)
    assert exchanges >= 1  # the pod's token was exchanged for the annotated role
    assert pod_sh(3001, f"cat {target}/id_rsa") == (0, "key")
    # The role may read, not write: the mount acts as the service account's role, not as the driver.
    result = run_as(3001, 3001, [sys.executable, "-c", WRITE, f"{target}/new.txt"])
    assert (result.returncode, result.stdout.decode().strip()) == (1, errno.errorcode[errno.EACCES]), result

    # A service account without the annotation, and a volume without roleArn: no role to assume.
    unannotated = node.target("pv-no-role")
    code, details = publish_pod(
        cluster, node, unannotated, account="plain", attributes=pod_attributes("plain")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and ROLE_ANNOTATION in details, details

    assert node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not node.leftovers()), node.leftovers()


def test_without_the_api_the_annotations_have_no_effect(cluster: Cluster) -> None:
    with iam_node(cluster.world, cluster.front, ["--kube-api=off"], prefix="s3csi-e2e-kube-") as off_node:
        asked = len(cluster.api.seen)
        target = off_node.target("pv-off")
        assert publish_pod(cluster, off_node, target, annotations={FS_USER: "1005"}) == (OK, "")
        # As with neither fsUser nor fsGroup: the Mountpoint Pod's own uid (1000) owns the files.
        assert [owner for _, owner in ls_ln(target)] == ["1000"]
        assert len(cluster.api.seen) == asked  # the API was never asked
        # The volume attribute fsUser works everywhere.
        with_attribute = off_node.target("pv-off-attr")
        assert publish_pod(cluster, off_node, with_attribute, attributes={"fsUser": "1005"}) == (OK, "")
        assert ls_ln(with_attribute) == [("-rw-------", "1005")]
        for each in (target, with_attribute):
            assert off_node.unpublish(each) == (OK, "")
        assert wait_until(lambda: not off_node.leftovers()), off_node.leftovers()

from __future__ import annotations

import pytest

from s3csi.errors import AlreadyExists, FailedPrecondition
from s3csi.kernel.mountinfo import parse_line
from s3csi.podmounter.targets import (
    TargetAction,
    check_unpublish,
    group_change,
    is_within,
    publish_action,
    targets_of,
)

SOURCE = parse_line("100 1 0:50 / /state/sources/s3csi-mp-a rw,nosuid,nodev - fuse.s3csi s3csi rw")
OTHER_SOURCE = parse_line("101 1 0:51 / /state/sources/s3csi-mp-b rw,nosuid,nodev - fuse.s3csi s3csi rw")
BIND_RW = parse_line(
    "102 1 0:50 / /kubelet/pods/p1/volumes/kubernetes.io~csi/pv/mount rw,nosuid - fuse.s3csi s3csi rw"
)
BIND_RO = parse_line(
    "103 1 0:50 / /kubelet/pods/p2/volumes/kubernetes.io~csi/pv/mount ro,nosuid - fuse.s3csi s3csi rw"
)
BIND_OTHER = parse_line(
    "104 1 0:51 / /kubelet/pods/p3/volumes/kubernetes.io~csi/pv/mount rw - fuse.s3csi s3csi rw"
)
TABLE = [SOURCE, OTHER_SOURCE, BIND_RW, BIND_RO, BIND_OTHER]


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("/var/lib/kubelet", "/var/lib/kubelet/pods/x/mount", True),
        ("/var/lib/kubelet/", "/var/lib/kubelet/pods", True),
        ("/var/lib/kubelet", "/var/lib/kubelet", False),
        ("/var/lib/kubelet", "/var/lib/kubelet-evil/pods", False),
        ("/var/lib/kubelet", "/etc", False),
        ("/", "/anything", True),
    ],
)
def test_is_within(base: str, path: str, expected: bool) -> None:
    assert is_within(base, path) is expected


def test_targets_of_a_source_are_its_binds() -> None:
    assert targets_of(SOURCE, TABLE) == [BIND_RW, BIND_RO]
    assert targets_of(OTHER_SOURCE, TABLE) == [BIND_OTHER]


@pytest.mark.parametrize(
    ("target", "source", "read_only", "expected"),
    [
        (None, None, False, TargetAction.BIND),
        (None, SOURCE, True, TargetAction.BIND),
        (BIND_RW, SOURCE, False, TargetAction.NONE),
        (BIND_RO, SOURCE, True, TargetAction.NONE),
    ],
)
def test_publish_action(target: object, source: object, read_only: bool, expected: TargetAction) -> None:
    assert publish_action(target, source, read_only=read_only) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "source", "read_only"),
    [
        (BIND_RW, SOURCE, True),  # same mount, other read-only setting
        (BIND_RO, SOURCE, False),
        (BIND_OTHER, SOURCE, False),  # another Mountpoint Pod
        (BIND_RW, None, False),  # something mounted there, our source is not
    ],
)
def test_incompatible_targets_already_exist(target: object, source: object, read_only: bool) -> None:
    with pytest.raises(AlreadyExists, match="already published"):
        publish_action(target, source, read_only=read_only)  # type: ignore[arg-type]


FS_GROUP_1001 = ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=0")


@pytest.mark.parametrize(
    ("published", "requested", "expected"),
    [
        (FS_GROUP_1001, FS_GROUP_1001, None),
        (FS_GROUP_1001, ("--allow-other", "--gid=1001", "--uid=1005"), None),  # an fs-user edit: kept
        (FS_GROUP_1001, ("--allow-other", "--gid=1002", "--uid=0"), ("1001", "1002")),
        (FS_GROUP_1001, ("--allow-root",), ("1001", "none")),
        (("--allow-root",), FS_GROUP_1001, ("none", "1001")),
        (("--allow-root",), ("--allow-root", "--read-only"), None),
    ],
)
def test_group_change(published: tuple[str, ...], requested: tuple[str, ...], expected: object) -> None:
    assert group_change(published, requested) == expected


@pytest.mark.parametrize(
    ("requested", "published", "refused"),
    [
        ("bucket:a", "bucket:a", False),
        ("bucket:a", None, False),  # nothing recorded: nothing to hold against the request
        ("bucket:b", "bucket:a", True),
        ("", "bucket:a", True),
    ],
)
def test_check_unpublish(requested: str, published: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(FailedPrecondition, match="holds volume 'bucket:a'"):
            check_unpublish("/k/t", requested, published)
    else:
        check_unpublish("/k/t", requested, published)

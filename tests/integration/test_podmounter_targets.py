"""resolve_target on a real directory tree: symlinks and ``..`` cannot leave the kubelet directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3csi.errors import InvalidArgument
from s3csi.podmounter.targets import resolve_target


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    kubelet = tmp_path / "kubelet"
    (kubelet / "pods" / "p1").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (kubelet / "pods" / "escape").symlink_to(tmp_path / "outside")
    (kubelet / "pods" / "p1" / "leaf-link").symlink_to(kubelet / "pods" / "p1")
    (kubelet / "pods" / "inside-link").symlink_to(kubelet / "pods" / "p1")
    return tmp_path


def test_targets_inside_resolve(tree: Path) -> None:
    kubelet = str(tree / "kubelet")
    assert resolve_target(kubelet, f"{kubelet}/pods/p1/mount") == f"{kubelet}/pods/p1/mount"
    assert resolve_target(kubelet, f"{kubelet}/pods/p1/../p1/mount/") == f"{kubelet}/pods/p1/mount"
    assert resolve_target(kubelet, f"{kubelet}/pods/inside-link/mount") == f"{kubelet}/pods/p1/mount"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("{k}/pods/escape/mount", "not inside the kubelet directory"),
        ("{k}/pods/../../outside/mount", "not inside the kubelet directory"),
        ("{k}/../outside", "not inside the kubelet directory"),
        ("{k}", "not inside the kubelet directory"),
        ("{k}/pods/p1/leaf-link", "is a symbolic link"),
        ("relative/path", "must be an absolute path"),
        ("", "must be an absolute path"),
        ("/", "does not name a directory"),
    ],
)
def test_escapes_are_refused(tree: Path, target: str, error: str) -> None:
    kubelet = str(tree / "kubelet")
    with pytest.raises(InvalidArgument, match=error):
        resolve_target(kubelet, target.format(k=kubelet))

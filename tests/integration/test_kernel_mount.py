"""Real bind mounts, unmounts and /proc/self/mountinfo (needs root)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import NotFound
from s3csi.kernel.mount import bind_mount, find_mount, is_dead_fuse, mountinfo, unmount

pytestmark = pytest.mark.usefixtures("privileged")


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    source, target = tmp_path / "source dir", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    yield source, target
    while find_mount(str(target)) is not None:  # a failed test must not leave a mount behind
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_bind_mount_read_write(dirs: tuple[Path, Path]) -> None:
    source, target = dirs
    bind_mount(str(source), str(target), read_only=False)
    entry = find_mount(str(target))
    assert entry is not None
    assert not entry.read_only
    (target / "f").write_text("through the bind")
    assert (source / "f").read_text() == "through the bind"
    unmount(str(target))
    assert find_mount(str(target)) is None
    assert not (target / "f").exists()


def test_bind_mount_read_only_refuses_writers(dirs: tuple[Path, Path]) -> None:
    source, target = dirs
    (source / "existing").write_text("x")
    bind_mount(str(source), str(target), read_only=True)
    entry = find_mount(str(target))
    assert entry is not None and entry.read_only
    assert {"nosuid", "nodev"} <= set(entry.options)
    assert (target / "existing").read_text() == "x"
    with pytest.raises(OSError) as raised:
        (target / "new").write_text("y")
    assert raised.value.errno == errno.EROFS
    (source / "still-writable").write_text("z")  # only the bind is read-only
    unmount(str(target))


def test_mountinfo_unescapes_a_mount_point_with_a_space(dirs: tuple[Path, Path]) -> None:
    source, _ = dirs
    spaced = source.parent / "with space\tand tab"
    spaced.mkdir()
    try:
        bind_mount(str(source), str(spaced), read_only=False)
        matches = [m for m in mountinfo() if m.mount_point == str(spaced)]
        assert len(matches) == 1 and matches[0].root.endswith("/source dir")
    finally:
        if find_mount(str(spaced)):
            unmount(str(spaced), lazy=True)


def test_unmount_of_a_plain_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=str(tmp_path)):
        unmount(str(tmp_path))


def test_unmount_does_not_follow_a_symlink(dirs: tuple[Path, Path]) -> None:
    source, target = dirs
    bind_mount(str(source), str(target), read_only=False)
    link = target.parent / "link"
    link.symlink_to(target)
    with pytest.raises(NotFound):
        unmount(str(link))
    assert find_mount(str(target)) is not None
    unmount(str(target))


def test_bind_mount_of_a_missing_source_names_the_target(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"tmp.*target.*ENOENT"):
        bind_mount(str(tmp_path / "missing"), str(tmp_path / "target"), read_only=False)


def test_is_dead_fuse_on_a_live_directory_and_a_missing_path(tmp_path: Path) -> None:
    assert is_dead_fuse(str(tmp_path)) is False
    with pytest.raises(NotFound):
        is_dead_fuse(str(tmp_path / "missing"))
    assert os.path.isdir(tmp_path)

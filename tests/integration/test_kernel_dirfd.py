"""kernel/dirfd.py on real directories: no symlink is followed, with openat2 and with the component
walk that stands in for it on kernels without openat2. Needs root (chown)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import FailedPrecondition
from s3csi.kernel import dirfd

pytestmark = pytest.mark.usefixtures("privileged")


@pytest.fixture(params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "walk":
        monkeypatch.setattr(dirfd, "_has_openat2", False)
    return str(request.param)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "outside").mkdir(mode=0o700)
    (tmp_path / "outside" / "secret").write_text("root's\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "file").write_text("inside\n")
    (tmp_path / "dir" / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "dir" / "relative-link").symlink_to("sub")
    fd = os.open(tmp_path / "dir", os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


@pytest.mark.parametrize(
    "path, flags, code",
    [
        ("link", dirfd.OPEN_DIRECTORY, errno.ELOOP),
        ("link/secret", os.O_RDONLY, errno.ELOOP),
        ("relative-link/file", os.O_RDONLY, errno.ELOOP),
        ("../outside/secret", os.O_RDONLY, errno.EXDEV),
        ("sub/../../outside", dirfd.OPEN_DIRECTORY, errno.EXDEV),
        ("/etc", dirfd.OPEN_DIRECTORY, errno.EXDEV),
        ("sub/file", dirfd.OPEN_DIRECTORY, errno.ENOTDIR),
        ("missing", os.O_RDONLY, errno.ENOENT),
    ],
)
def test_open_beneath_refuses_links_and_escapes(
    base: int, resolution: str, path: str, flags: int, code: int
) -> None:
    with pytest.raises(OSError) as refused:
        os.close(dirfd.open_beneath(base, path, flags))
    assert refused.value.errno == code, (resolution, refused.value)


def test_open_beneath_opens_what_lies_below(base: int, resolution: str) -> None:
    fd = dirfd.open_beneath(base, "sub/file", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"inside\n"
        assert os.get_inheritable(fd) is False
    finally:
        os.close(fd)
    # O_PATH | O_NOFOLLOW opens a trailing symlink itself, as open(2) does: the caller checks fstat.
    link = dirfd.open_beneath(base, "link", os.O_PATH | os.O_NOFOLLOW)
    try:
        assert stat.S_ISLNK(os.fstat(link).st_mode)
    finally:
        os.close(link)


@pytest.mark.parametrize("planted", ["symlink", "file", "fifo", "foreign-directory"])
def test_ensure_directory_replaces_a_planted_entry(tmp_path: Path, resolution: str, planted: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    (victim / "keep").write_text("keep\n")
    parent = tmp_path / "parent"
    parent.mkdir()
    entry = parent / "credentials"
    if planted == "symlink":
        entry.symlink_to(victim)
    elif planted == "file":
        entry.write_text("planted\n")
    elif planted == "fifo":
        os.mkfifo(entry)
    else:
        entry.mkdir()
        (entry / "credentials-x").symlink_to(victim / "keep")
        os.chown(entry, 1000, 1000)
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = dirfd.ensure_directory(parent_fd, "credentials", uid=0, gid=1000, mode=0o2750, where=str(parent))
        try:
            dirfd.write_file_atomically(fd, "k", b"key\n", uid=0, gid=1000, mode=0o640, where=str(entry))
        finally:
            os.close(fd)
    finally:
        os.close(parent_fd)
    st = os.lstat(entry)
    assert stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 1000, 0o2750)
    assert os.listdir(entry) == ["k"] and (entry / "k").read_bytes() == b"key\n"
    key = os.stat(entry / "k")
    assert (key.st_uid, key.st_gid, stat.S_IMODE(key.st_mode)) == (0, 1000, 0o640)
    victim_st = os.stat(victim)
    assert (victim_st.st_uid, victim_st.st_gid, stat.S_IMODE(victim_st.st_mode)) == (0, 0, 0o700)
    assert os.listdir(victim) == ["keep"] and (victim / "keep").read_text() == "keep\n"


def test_ensure_directory_keeps_its_own_directory_and_fixes_its_mode(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o777)
    (tmp_path / "d" / "kept").write_text("x")
    parent_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(dirfd.ensure_directory(parent_fd, "d", uid=0, gid=1000, mode=0o2750, where=str(tmp_path)))
    finally:
        os.close(parent_fd)
    st = os.stat(tmp_path / "d")
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 0o2750) and os.listdir(tmp_path / "d") == ["kept"]


def test_ensure_directory_gives_up_on_a_parent_that_keeps_replacing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").symlink_to("/")
    # The racing mounter: every removal is followed by a new link.
    real_unlink = dirfd.unlink_entry

    def replant(dir_fd: int, name: str, *, where: str) -> bool:
        removed = real_unlink(dir_fd, name, where=where)
        os.symlink("/", name, dir_fd=dir_fd)
        return removed

    monkeypatch.setattr(dirfd, "unlink_entry", replant)
    parent_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FailedPrecondition, match="replaced by another process 3 times"):
            dirfd.ensure_directory(parent_fd, "d", uid=0, gid=0, mode=0o700, where=str(tmp_path))
    finally:
        os.close(parent_fd)
    assert os.readlink(tmp_path / "d") == "/"


def test_remove_tree_never_follows_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "deep").mkdir(parents=True)
    (victim / "deep" / "file").write_text("keep")
    tree = tmp_path / "pods" / "p"
    (tree / "comm").mkdir(parents=True)
    (tree / "comm" / "to-dir").symlink_to(victim)
    (tree / "comm" / "to-file").symlink_to(victim / "deep" / "file")
    os.mkfifo(tree / "comm" / "fifo")
    (tmp_path / "pods" / "link-pod").symlink_to(victim)
    pods_fd = dirfd.open_directory(str(tmp_path / "pods"))
    try:
        dirfd.remove_tree(pods_fd, "p", where=str(tmp_path / "pods"))
        dirfd.remove_tree(pods_fd, "link-pod", where=str(tmp_path / "pods"))
        dirfd.remove_tree(pods_fd, "absent", where=str(tmp_path / "pods"))  # nothing there: fine
    finally:
        os.close(pods_fd)
    assert os.listdir(tmp_path / "pods") == []
    assert (victim / "deep" / "file").read_text() == "keep"


def test_write_file_atomically_replaces_a_planted_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "k").symlink_to(victim)
    fd = dirfd.open_directory(str(tmp_path / "d"))
    try:
        dirfd.write_file_atomically(fd, "k", b"new\n", uid=0, gid=0, mode=0o600, where=str(tmp_path / "d"))
    finally:
        os.close(fd)
    assert victim.read_text() == "root's\n"
    assert not os.path.islink(tmp_path / "d" / "k") and (tmp_path / "d" / "k").read_bytes() == b"new\n"
    assert os.listdir(tmp_path / "d") == ["k"]  # no temporary left

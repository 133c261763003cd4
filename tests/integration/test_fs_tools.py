"""Everyday tools run as the volume's owner (uid 1001, no capabilities) through a real mount, and the same
commands on a local directory: the two results must be the same, byte for byte, with the times, modes and
symbolic links the tool preserves."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import run_as
from tests.integration.fs_helpers import MountedFs, mounted, world_readable_dir
from tests.integration.test_fs_attributes import EVERYDAY_FLAGS, USER, owner_flags

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

# Modes as the tools set them, unclipped: the volume allows everything here (0777), so what is shown is
# what was stored (test_fs_attributes checks the clipping).
WIDE = owner_flags("0777", "0777")
# Times with nanoseconds, to show they are kept to the nanosecond.
MTIME_NS = 1_500_000_000_123_456_789


@pytest.fixture
def fs(s3_server: EmbeddedS3Server, bucket: str) -> Iterator[MountedFs]:
    with mounted(s3_server, bucket, *WIDE, *EVERYDAY_FLAGS) as mount:
        yield mount


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory of the user's: the source tree ``src`` (made by the user), and local destinations."""
    base = world_readable_dir("s3csi-tools-")
    os.chown(base, USER, USER)
    user(
        "umask 022; mkdir -p src/sub/deeper && printf 'hello\\n' > src/a.txt && head -c 300000 /dev/urandom"
        " > src/sub/blob.bin && printf '#!/bin/sh\\necho hi\\n' > src/sub/run.sh && : > src/empty"
        " && printf secret > src/sub/deeper/key && chmod 750 src/sub/run.sh && chmod 600 src/sub/deeper/key"
        " && chmod 750 src/sub/deeper && ln -s sub/blob.bin src/link && ln -s ../a.txt src/sub/up",
        cwd=base,
    )
    for path in sorted((base / "src").rglob("*"), reverse=True):
        os.utime(path, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)
    yield base
    shutil.rmtree(base)


def user(command: str, cwd: Path | str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C"}
    result = run_as(USER, USER, ["sh", "-c", command], cwd=cwd, env=env, timeout=120)
    assert result.returncode == 0, (command, result.stderr.decode(errors="replace"))
    return result


def tree(root: Path, *, times: bool, modes: bool) -> dict[str, Any]:
    """Every entry under ``root``: its kind and bytes (or link target), with its mtime and mode if asked."""
    entries: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        status = path.lstat()
        if stat.S_ISLNK(status.st_mode):
            entry: tuple[Any, ...] = ("link", os.readlink(path))
        elif stat.S_ISDIR(status.st_mode):
            entry = ("dir",)
        else:
            entry = ("file", path.read_bytes())
        if times and not stat.S_ISDIR(status.st_mode):
            entry += (status.st_mtime_ns,)
        if modes and not stat.S_ISLNK(status.st_mode):
            entry += (oct(stat.S_IMODE(status.st_mode)),)
        entries[str(path.relative_to(root))] = entry
    return entries


def same_on_both(fs: MountedFs, work: Path, command: str, *, times: bool, modes: bool) -> dict[str, Any]:
    """``command`` (with {dest} for its destination) run locally and on the mount: the two trees."""
    (work / "local").mkdir()
    os.chown(work / "local", USER, USER)
    user(command.format(dest=work / "local"), cwd=work)
    user(command.format(dest=fs.path), cwd=work)
    local = tree(work / "local", times=times, modes=modes)
    assert tree(fs.path, times=times, modes=modes) == local
    assert local  # the command made something
    return local


def test_tar_x(fs: MountedFs, work: Path) -> None:
    user("tar -cf archive.tar -C src .", cwd=work)
    # A user's tar gives files their modes through open() (with the umask), which the mount does not
    # store (a new file has the volume's mode until chmod): times, bytes and links are compared.
    extracted = same_on_both(fs, work, "tar -xf archive.tar -C {dest}", times=True, modes=False)
    whole_seconds = MTIME_NS // 10**9 * 10**9  # tar's default format keeps seconds
    assert extracted["sub/deeper/key"][1:] == (b"secret", whole_seconds)
    assert extracted["link"] == ("link", "sub/blob.bin", whole_seconds)


def test_unzip(fs: MountedFs, work: Path) -> None:
    # Without -y: the links' files are archived. unzip makes a link by reading back the file it has just
    # written, which needs read-write opens.
    user("cd src && zip -q -r ../archive.zip .", cwd=work)
    # zip keeps times to the second (two seconds in its DOS field, one in its Unix one).
    extracted = same_on_both(fs, work, "unzip -q archive.zip -d {dest}", times=True, modes=True)
    assert extracted["sub/run.sh"][-1] == "0o750"


def test_cp_a(fs: MountedFs, work: Path) -> None:
    copied = same_on_both(fs, work, "cp -a src/. {dest}", times=True, modes=True)
    assert copied["sub/up"] == ("link", "../a.txt", MTIME_NS)


def test_rsync_a_then_again_copies_nothing(fs: MountedFs, work: Path) -> None:
    same_on_both(fs, work, "rsync -a src/ {dest}/", times=True, modes=True)
    again = user(f"rsync -a --itemize-changes src/ {fs.path}/", cwd=work).stdout
    assert again == b""  # every file's size and time already match: nothing sent, nothing changed


def test_rsync_t_twice_copies_nothing_the_second_time(fs: MountedFs, work: Path) -> None:
    same_on_both(fs, work, "rsync -rt src/ {dest}/", times=True, modes=False)
    again = user(f"rsync -rt --stats src/ {fs.path}/", cwd=work).stdout.decode()
    assert "Number of regular files transferred: 0" in again, again


def test_touch(fs: MountedFs, work: Path) -> None:
    touched = same_on_both(
        fs,
        work,
        "touch {dest}/new && touch -d '2001-02-03 04:05:06.5' {dest}/new {dest}/old_is_new",
        times=True,
        modes=False,
    )
    assert touched["new"][-1] == 981173106_500000000


def test_git_clone_of_a_local_repository(fs: MountedFs, work: Path) -> None:
    user(
        "git init -q repo && cd repo && git config user.email t@example.com && git config user.name t"
        " && cp -a ../src/. . && git add -A && git commit -q -m first && chmod 600 sub/deeper/key",
        cwd=work,
    )
    user(f"git clone -q repo {fs.path}/clone && git -C {fs.path}/clone status --porcelain", cwd=work)
    user(f"git clone -q repo {work}/clone", cwd=work)
    # Modes as git sets them through open() are not stored (test_tar_x): bytes and links are compared.
    cloned = tree(fs.path / "clone", times=False, modes=False)
    local = tree(work / "clone", times=False, modes=False)
    # Git's own files differ between any two clones (pack names aside, index times); the work tree and the
    # history must not.
    assert {k: v for k, v in cloned.items() if not k.startswith(".git/")} == {
        k: v for k, v in local.items() if not k.startswith(".git/")
    }
    log = user(f"git -C {fs.path}/clone log --format=%s", cwd=work).stdout
    assert log == b"first\n"
    assert user(f"git -C {fs.path}/clone status --porcelain", cwd=work).stdout == b""


def test_ln_s_and_chmod_narrowing(fs: MountedFs, work: Path) -> None:
    linked = same_on_both(
        fs,
        work,
        "printf k > {dest}/id_rsa && chmod 600 {dest}/id_rsa && ln -s id_rsa {dest}/current",
        times=False,
        modes=True,
    )
    assert linked == {"current": ("link", "id_rsa"), "id_rsa": ("file", b"k", "0o600")}

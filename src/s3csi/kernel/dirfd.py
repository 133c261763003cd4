"""File operations of root inside directories that a less-privileged process can write.

A Mountpoint Pod (uid 1000) writes its comm dir, so any name in it may be replaced at any moment
by a symlink, a FIFO, a hard link or a directory of the mounter's making. The node plugin runs as
root: if it followed such a name it would chown, chmod, write or delete whatever the link points at.
So every operation here starts from a directory fd the caller trusts and resolves names below it:

- ``open_beneath``: ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`` where the
  kernel has it (Linux ≥ 5.6), else a walk of one ``O_NOFOLLOW`` component at a time. No symlink is
  followed, ``..`` and absolute paths are refused.
- ``ensure_directory``: a directory of the given owner and mode, changed through its fd (``fchown``,
  ``fchmod``). An entry that is not a directory of that owner was planted: it is removed (the link,
  never its target) and the directory made anew.
- ``write_file_atomically``: ``O_CREAT | O_EXCL | O_NOFOLLOW`` temporary, ``fchown``/``fchmod``, write,
  ``fsync``, ``renameat`` over the name (a rename replaces a planted link, it does not follow it).
- ``unlink_entry`` and ``remove_tree``: ``unlinkat``; a tree is removed through directory fds
  (``shutil.rmtree`` with ``dir_fd``, which on Linux never follows a link).

Failures are ``s3csi.errors`` errors naming the path and the errno.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Callable

from s3csi.errors import FailedPrecondition, Internal
from s3csi.kernel.syscalls import os_error

log = logging.getLogger(__name__)

# <linux/openat2.h>
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall tables were unified)
_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# A fresh directory is owner-only until its fd has the final owner and mode: nobody else enters it in between.
_NEW_DIRECTORY_MODE = 0o700
# Planted entries replaced in a row before giving up: a mounter racing the driver gets a clear error.
_REPLACE_ATTEMPTS = 3

if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - every Linux build has the fd-based rmtree
    raise ImportError("shutil.rmtree is not fd-based on this platform: s3csi cannot remove trees safely")


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
# None until the first call tells whether this kernel has openat2 (ENOSYS: older than 5.6, or a
# seccomp profile that refuses it).
_has_openat2: bool | None = None


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int | None:
    """openat2(2) with the no-symlink resolution; None when the kernel has no openat2."""
    global _has_openat2
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE)
    while True:
        fd = _libc.syscall(
            _SYS_OPENAT2,
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            _has_openat2 = True
            return int(fd)
        code = ctypes.get_errno()
        if code == errno.EINTR:
            continue
        if code == errno.ENOSYS and not _has_openat2:
            _has_openat2 = False
            return None
        raise OSError(code, os.strerror(code), path)


def _components(path: str) -> list[str]:
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise OSError(errno.EXDEV, "not a plain relative path below the directory", path)
    return parts


def _walk(dir_fd: int, path: str, flags: int, mode: int) -> int:
    """openat2's resolution by hand: one ``O_NOFOLLOW`` component at a time."""
    *parents, last = _components(path)
    current = dir_fd
    try:
        for part in parents:
            following = _open_nofollow(current, part, OPEN_DIRECTORY, 0)
            if current != dir_fd:
                os.close(current)
            current = following
        return _open_nofollow(current, last, flags | os.O_CLOEXEC, mode)
    finally:
        if current != dir_fd:
            os.close(current)


def _open_nofollow(dir_fd: int, name: str, flags: int, mode: int) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    except NotADirectoryError:
        # open(2) says ENOTDIR for a symlink opened with O_DIRECTORY | O_NOFOLLOW; openat2 says ELOOP.
        st = _lstat(dir_fd, name)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
        raise


def open_beneath(dir_fd: int, path: str, flags: int = OPEN_DIRECTORY, mode: int = 0) -> int:
    """Open ``path``, relative and below the directory ``dir_fd``, following no symlink on the way.

    Raises ``OSError``: ``ELOOP`` for a symlink anywhere in ``path`` (with ``O_PATH | O_NOFOLLOW`` a
    trailing symlink is opened itself, as open(2) does: check what ``fstat`` says), ``EXDEV`` for a
    path that would leave ``dir_fd`` (``..``, absolute), ``ENOTDIR`` for a non-directory opened with
    ``O_DIRECTORY``, and whatever else open(2) says. The fd is close-on-exec.
    """
    if not path or path.startswith("/"):
        _components(path)  # raises the EXDEV of a path that leaves dir_fd
    if _has_openat2 is not False:
        fd = _openat2(dir_fd, path, flags, mode)
        if fd is not None:
            return fd
    return _walk(dir_fd, path, flags, mode)


def open_directory(path: str) -> int:
    """Open a directory whose parents only root can change (the state dir, the kubelet dir);
    the last component is not followed if it is a symlink."""
    try:
        return os.open(path, OPEN_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise os_error("open", path, exc.errno or errno.EIO) from None


def _describe(st: os.stat_result) -> str:
    kind = stat.S_IFMT(st.st_mode)
    names = {
        stat.S_IFLNK: "symlink",
        stat.S_IFREG: "file",
        stat.S_IFIFO: "FIFO",
        stat.S_IFSOCK: "socket",
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
        stat.S_IFDIR: "directory",
    }
    return f"{names.get(kind, 'entry')} of uid {st.st_uid}"


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def ensure_directory(dir_fd: int, name: str, *, uid: int, gid: int, mode: int, where: str) -> int:
    """An open fd of the directory ``name`` in ``dir_fd``, owned ``uid:gid`` with ``mode``.

    Made when absent. An existing directory owned by ``uid`` is kept and its group and mode fixed.
    Anything else at ``name`` — a symlink, a file, a FIFO, a hard link, a directory of another owner —
    was planted by whoever can write ``dir_fd``: it is removed without being followed and the
    directory made anew, with a warning. ``where`` names ``dir_fd`` in messages.
    """
    path = f"{where}/{name}"
    for _ in range(_REPLACE_ATTEMPTS):
        try:
            os.mkdir(name, _NEW_DIRECTORY_MODE, dir_fd=dir_fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise os_error("mkdir", path, exc.errno or errno.EIO) from None
        try:
            fd = open_beneath(dir_fd, name)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                raise os_error("open", path, exc.errno or errno.EIO) from None
            _replace(dir_fd, name, where)
            continue
        try:
            st = os.fstat(fd)
            if st.st_uid != uid:
                os.close(fd)
                _replace(dir_fd, name, where)
                continue
            if st.st_gid != gid:
                os.fchown(fd, uid, gid)
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
        except OSError as exc:
            os.close(fd)
            raise os_error("fchown/fchmod", path, exc.errno or errno.EIO) from None
        return fd
    raise FailedPrecondition(
        f"{path}: replaced by another process {_REPLACE_ATTEMPTS} times while being made; "
        "is the Mountpoint Pod compromised?"
    )


def _replace(dir_fd: int, name: str, where: str) -> None:
    st = _lstat(dir_fd, name)
    if st is None:
        return  # gone in between: the next attempt makes the directory
    log.warning("removing %s at %s/%s that s3csi did not make", _describe(st), where, name)
    if stat.S_ISDIR(st.st_mode):
        remove_tree(dir_fd, name, where=where)
    else:
        unlink_entry(dir_fd, name, where=where)


def write_file_atomically(
    dir_fd: int, name: str, data: bytes, *, uid: int, gid: int, mode: int, where: str
) -> None:
    """Replace ``name`` in ``dir_fd`` with a file of ``data``, owned ``uid:gid`` with ``mode``.

    A reader sees the old file or the new one, never a part. The temporary is created with
    ``O_EXCL | O_NOFOLLOW`` under an unpredictable name (``.<name>-<random>``) and made
    ``uid:gid mode`` before the first byte is written; on failure it is removed.
    """
    temporary = f".{name}-{secrets.token_hex(8)}"
    try:
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
    except OSError as exc:
        raise os_error("create", f"{where}/{temporary}", exc.errno or errno.EIO) from None
    try:
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as exc:
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise os_error("write", f"{where}/{name}", exc.errno or errno.EIO) from None
        raise


def unlink_entry(dir_fd: int, name: str, *, where: str) -> bool:
    """Remove the name ``name`` from ``dir_fd`` — the link itself, never what it points at; a
    directory is removed with its tree. False when there was nothing to remove."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        remove_tree(dir_fd, name, where=where)
        return True
    except OSError as exc:
        raise os_error("unlink", f"{where}/{name}", exc.errno or errno.EIO) from None


def remove_tree(dir_fd: int, name: str, *, where: str) -> None:
    """Remove ``name`` in ``dir_fd`` and everything below it through directory fds: a symlink found
    anywhere is removed, never followed. Nothing there is not an error."""
    failures: list[str] = []

    def failed(function: Callable[..., object], path: str, info: object) -> None:
        if isinstance(info, FileNotFoundError):
            return
        failures.append(f"{path}: {info}")

    try:
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=dir_fd)
            return
    except FileNotFoundError:
        return
    shutil.rmtree(name, dir_fd=dir_fd, onerror=failed)
    if failures:
        raise Internal(f"cannot remove {where}/{name}: {failures[0]}")

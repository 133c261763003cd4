"""The AWS shared-credentials file in a Mountpoint Pod's comm dir (``credentials/credentials``).

Written atomically (a temporary file renamed over the old one), owner root, group 1000, mode 0640:
the mounter (uid 1000, group 1000) may read it, nobody else on the node. The comm dir is the
mounter's to write, so root works in it through directory fds and follows no link there. A
rotation is a rewrite; the mounter's S3 client notices the new inode on its next request, without
a remount.
"""

from __future__ import annotations

import errno
import hashlib
import os

from s3csi.errors import NotFound
from s3csi.kernel.dirfd import (
    ensure_directory,
    open_beneath,
    open_directory,
    unlink_entry,
    write_file_atomically,
)
from s3csi.s3.credentials import Credentials

CREDENTIALS_FILE = "credentials"
FILE_MODE = 0o640
DIR_MODE = 0o2750


def render_shared_credentials(credentials: Credentials) -> str:
    lines = [
        "[default]",
        f"aws_access_key_id = {credentials.access_key_id}",
        f"aws_secret_access_key = {credentials.secret_access_key}",
    ]
    if credentials.session_token:
        lines.append(f"aws_session_token = {credentials.session_token}")
    return "\n".join(lines) + "\n"


def credentials_file_name(volume_id: str, workload: str) -> str:
    """The file of one volume for one workload identity (the sharing key, which holds the namespace and
    service account or the secret's key digest): two volumes, or two identities, never share a file.
    A digest, so neither the volume id nor the identity shows in a path."""
    digest = hashlib.sha256(f"{volume_id}\0{workload}".encode()).hexdigest()[:32]
    return f"{CREDENTIALS_FILE}-{digest}"


def write_shared_credentials(
    directory: str, credentials: Credentials, *, gid: int, name: str = CREDENTIALS_FILE
) -> str:
    """Write the file ``name`` into ``directory`` (made root:gid 2750 when absent); returns its path.

    ``directory``'s parent (the comm dir) is the mounter's to write, so ``directory`` itself may have
    been replaced by a symlink, a file or a directory of the mounter's: it is opened without following
    links, anything but root's own directory is removed and the directory made anew, and its owner,
    mode and the file are set through fds (``kernel.dirfd``). The parent's own path must be trusted.
    """
    parent, base = os.path.split(directory)
    parent_fd = open_directory(parent)
    try:
        dir_fd = ensure_directory(parent_fd, base, uid=0, gid=gid, mode=DIR_MODE, where=parent)
    finally:
        os.close(parent_fd)
    try:
        data = render_shared_credentials(credentials).encode("utf-8")
        write_file_atomically(dir_fd, name, data, uid=0, gid=gid, mode=FILE_MODE, where=directory)
    finally:
        os.close(dir_fd)
    return os.path.join(directory, name)


def remove_shared_credentials(directory: str) -> None:
    """Delete every credentials file in ``directory`` (and temporaries a crash left); succeed when there
    is none, or no directory. Like ``write_shared_credentials``, nothing below ``directory``'s parent
    is followed: a planted entry in place of ``directory`` is removed, not what it points at."""
    parent, base = os.path.split(directory)
    try:
        parent_fd = open_directory(parent)
    except NotFound:
        return
    try:
        try:
            dir_fd = open_beneath(parent_fd, base)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            unlink_entry(parent_fd, base, where=parent)  # not ours: the name goes, its target stays
            return
    finally:
        os.close(parent_fd)
    try:
        for entry in os.listdir(dir_fd):
            if entry.startswith((CREDENTIALS_FILE, f".{CREDENTIALS_FILE}-")):
                unlink_entry(dir_fd, entry, where=directory)
    finally:
        os.close(dir_fd)

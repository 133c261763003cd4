"""The AWS shared-credentials file in a Mountpoint Pod's comm dir (``credentials/credentials``).

Written atomically (a temporary file renamed over the old one), owner root, group 1000, mode 0640:
the mounter (uid 1000, group 1000) may read it, nobody else on the node. A rotation is a rewrite;
the mounter's S3 client notices the new inode on its next request, without a remount.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

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
    """Write the file ``name`` into ``directory`` (created root:gid 2750 when absent); returns its path."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chown(directory, 0, gid)
    os.chmod(directory, DIR_MODE)
    path = os.path.join(directory, name)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".credentials-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchown(file.fileno(), 0, gid)
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(render_shared_credentials(credentials))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def remove_shared_credentials(directory: str) -> None:
    """Delete every credentials file in ``directory`` (and temporaries a crash left); succeed when there
    is none, or no directory."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.startswith((CREDENTIALS_FILE, ".credentials-")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))

"""What a Mountpoint Pod's FUSE session was mounted with, kept so that a session whose mounter died can
be mounted again the same way without the NodePublishVolume that made it (docs/node-publish.md).

``STATE/sessions/<mountpoint pod>.json`` (root only, beside ``sources/``): the mount.sock request (bucket,
prefix, effective options, the credentials file's name — never a secret value) and the options of the
FUSE mount itself. Written before the session is handed over, removed when the Mountpoint Pod is retired.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TypedDict

from s3csi.podmounter.protocol import MountRequest

SESSIONS_DIR = "sessions"


class SessionRecord(TypedDict):
    request: MountRequest
    allow_other: bool
    read_only: bool
    fsname: str  # the mount's source in the mount table: the bucket


def _path(sessions_dir: Path, name: str) -> Path:
    return sessions_dir / f"{name}.json"


def write_session(sessions_dir: Path, name: str, record: SessionRecord) -> None:
    sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _path(sessions_dir, name)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temporary, path)


def read_session(sessions_dir: Path, name: str) -> SessionRecord | None:
    """The record, or None when there is none (a session mounted by a driver that kept none) or it is
    damaged."""
    try:
        record: SessionRecord = json.loads(_path(sessions_dir, name).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not {"request", "allow_other", "read_only", "fsname"} <= set(record):
        return None
    return record


def delete_session(sessions_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(sessions_dir, name).unlink()

"""S3Operations storing attributes on an existing object (a metadata CopyObject), against a stand-in client:
what it sends, and what it does when another client replaced the object since the mount knew it."""

from __future__ import annotations

import asyncio
import errno
import stat
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pyfuse3
import pytest

from s3csi.fs.operations import S3Operations
from s3csi.fs.settings import FsSettings
from s3csi.s3.errors import S3Error
from s3csi.s3.wire import ListPage, ObjectInfo


class ObjectsClient:
    """One object, "f", whose version changes when ``replace_by_another`` says so."""

    def __init__(self) -> None:
        self.info = ObjectInfo("f", 3, '"v1"', 100.0, {"mtime": "1", "other": "kept"}, "text/plain")
        self.calls: list[tuple[str, Any]] = []
        self.replaced_by_another: ObjectInfo | None = None

    async def list_objects_v2(self, bucket: str, **query: Any) -> ListPage:
        self.calls.append(("list", query.get("prefix")))
        return ListPage([ObjectInfo("f", 3, self.info.etag, 100.0)], [], None)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        self.calls.append(("head", key))
        return self.info

    async def get_whole_object(self, bucket: str, key: str) -> tuple[bytes, ObjectInfo]:
        self.calls.append(("get", key))
        return b"abc", self.info

    async def replace_metadata(
        self,
        bucket: str,
        info: ObjectInfo,
        metadata: Mapping[str, str],
        options: Any = None,
        *,
        dest_key: str | None = None,
    ) -> str:
        self.calls.append(("copy", (info.etag, dict(metadata), info.content_type)))
        if self.replaced_by_another is not None:
            self.info, self.replaced_by_another = self.replaced_by_another, None
        if info.etag != self.info.etag:
            raise S3Error("CopyObject: precondition failed", code="PreconditionFailed", status=412)
        self.info = ObjectInfo("f", info.size, '"copied"', 200.0, dict(metadata), info.content_type)
        return self.info.etag


def operations() -> tuple[S3Operations, ObjectsClient]:
    client = ObjectsClient()
    settings = FsSettings(bucket="b", mountpoint="/mnt", uid=7, gid=8, file_mode=0o660)
    return S3Operations(settings, client), client  # type: ignore[arg-type]


def setattr_fields(**given: bool) -> Any:
    """pyfuse3.SetattrFields, whose attributes only pyfuse3 may set: a stand-in with the same names."""
    names = ("atime", "ctime", "gid", "mode", "mtime", "size", "uid")
    return SimpleNamespace(**{f"update_{name}": given.get(name, False) for name in names})


def chmod(mode: int) -> tuple[pyfuse3.EntryAttributes, Any]:
    attr = pyfuse3.EntryAttributes()
    attr.st_mode = stat.S_IFREG | mode
    return attr, setattr_fields(mode=True)


def test_chmod_of_a_known_object_is_one_copy_keeping_other_metadata_and_content_type() -> None:
    async def scenario() -> None:
        ops, client = operations()
        ino = (await ops.lookup(1, b"f")).st_ino
        client.calls.clear()
        shown = await ops.setattr(ino, *chmod(0o600), None, None)
        assert client.calls == [
            ("copy", ('"v1"', {"mtime": "1", "other": "kept", "mode": "33152"}, "text/plain"))
        ]
        assert stat.S_IMODE(shown.st_mode) == 0o600
        shown = await ops.setattr(ino, *chmod(0o777), None, None)
        assert stat.S_IMODE(shown.st_mode) == 0o660  # stored 0777, shown within the volume's 0660

    asyncio.run(scenario())


def test_a_copy_refused_because_the_object_changed_is_made_again_from_a_fresh_head() -> None:
    async def scenario() -> None:
        ops, client = operations()
        ino = (await ops.lookup(1, b"f")).st_ino
        client.calls.clear()
        client.replaced_by_another = ObjectInfo("f", 9, '"v2"', 150.0, {"theirs": "1"}, None)
        await ops.setattr(ino, *chmod(0o640), None, None)
        assert client.calls == [
            ("copy", ('"v1"', {"mtime": "1", "other": "kept", "mode": "33184"}, "text/plain")),
            ("head", "f"),
            ("copy", ('"v2"', {"theirs": "1", "mode": "33184"}, None)),  # their metadata, not ours
        ]
        assert (await ops.getattr(ino)).st_size == 9

    asyncio.run(scenario())


def test_chown_to_the_owner_is_a_no_op_and_to_anyone_else_eperm() -> None:
    async def scenario() -> None:
        ops, client = operations()
        ino = (await ops.lookup(1, b"f")).st_ino
        client.calls.clear()
        attr, fields = pyfuse3.EntryAttributes(), setattr_fields(uid=True, gid=True)
        attr.st_uid, attr.st_gid = 7, 8
        await ops.setattr(ino, attr, fields, None, None)
        attr.st_gid = 0
        with pytest.raises(pyfuse3.FUSEError) as refused:
            await ops.setattr(ino, attr, fields, None, None)
        assert refused.value.errno == errno.EPERM
        assert client.calls == []

    asyncio.run(scenario())

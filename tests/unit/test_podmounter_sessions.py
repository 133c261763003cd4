"""The record of how a Mountpoint Pod's FUSE session was mounted (podmounter/sessions.py), kept for its
remount after a crash: written and read back, and a damaged or partial record is no record."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3csi.podmounter.protocol import MountRequest
from s3csi.podmounter.sessions import SessionRecord, delete_session, read_session, write_session

REQUEST = MountRequest(
    version=1,
    volume_id="v",
    bucket="b",
    prefix="p/",
    args=["--allow-other"],
    env={"region": "us-east-1", "credentials_file": "credentials/credentials-x"},  # type: ignore[typeddict-item]
)


def test_a_record_reads_back_and_goes(tmp_path: Path) -> None:
    record = SessionRecord(request=REQUEST, allow_other=True, read_only=True, fsname="b")
    write_session(tmp_path / "sessions", "s3csi-mp-k", record)
    assert read_session(tmp_path / "sessions", "s3csi-mp-k") == record
    assert [p.name for p in (tmp_path / "sessions").iterdir()] == ["s3csi-mp-k.json"]
    delete_session(tmp_path / "sessions", "s3csi-mp-k")
    delete_session(tmp_path / "sessions", "s3csi-mp-k")  # gone already: fine
    assert read_session(tmp_path / "sessions", "s3csi-mp-k") is None


@pytest.mark.parametrize("content", ["", "{", "[]", '"x"', '{"request": {}, "allow_other": true}'])
def test_a_damaged_record_is_no_record(tmp_path: Path, content: str) -> None:
    (tmp_path / "s3csi-mp-k.json").write_text(content)
    assert read_session(tmp_path, "s3csi-mp-k") is None

"""The text log format: one record is one line, whatever a CSI caller puts in a volume id or path."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from s3csi.logs import JsonFormatter, TextFormatter, escape_controls


def record(
    message: str, *args: object, exc: BaseException | None = None, **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord("s3csi.csi", logging.WARNING, __file__, 1, message, args or None, None)
    if exc is not None:
        made.exc_info = (type(exc), exc, exc.__traceback__)
    made.__dict__.update(extra)
    return made


FORGED = "bucket:x\n2026-12-05 01:00:00,000 INFO s3csi.csi.interceptor: rpc=DeleteVolume code=OK"


def test_a_newline_in_a_volume_id_cannot_forge_a_line() -> None:
    line = TextFormatter().format(
        record("DeleteVolume of %r: %s", "v", FORGED, volume_id=FORGED, target_path="/k/\r\x1b[2Jpods")
    )
    assert len(line.splitlines()) == 1
    assert "bucket:x\\n2026-12-05" in line and "volume_id=bucket:x\\n2026" in line
    assert "target_path=/k/\\r\\x1b[2Jpods" in line


def test_a_traceback_stays_below_its_record_indented() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError as exc:
        line = TextFormatter().format(record("failed", exc=exc))
    first, *rest = line.splitlines()
    assert first.endswith("failed") and rest
    assert all(text.startswith("    ") for text in rest)


def test_json_lines_are_escaped_by_json_itself() -> None:
    assert len(JsonFormatter().format(record(FORGED, volume_id=FORGED)).splitlines()) == 1


@settings(max_examples=2000, deadline=None)
@given(st.text(), st.text(), st.text())
def test_any_message_and_field_make_exactly_one_line(message: str, volume_id: str, path: str) -> None:
    line = TextFormatter().format(record("%s", message, volume_id=volume_id, target_path=path))
    assert len(line.splitlines()) == 1
    assert escape_controls(message) in line

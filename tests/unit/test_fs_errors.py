"""fuse_errors: every failure reaches the kernel as an errno, and a lasting cause is logged once."""

from __future__ import annotations

import ast
import asyncio
import errno
import logging
from collections.abc import Sequence
from pathlib import Path

import pyfuse3
import pytest

import s3csi.fs
from s3csi.errors import InvalidArgument, Unavailable
from s3csi.fs import errors as fs_errors
from s3csi.log_limit import RepeatLimiter
from s3csi.s3.errors import NoSuchKey, S3Error, credentials_error


@pytest.fixture(autouse=True)
def fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs_errors, "repeats", RepeatLimiter())


def calls(failures: Sequence[BaseException], caplog: pytest.LogCaptureFixture) -> list[int]:
    """The errno of each call of a wrapped handler that raises the next failure."""
    pending = iter(failures)

    @fs_errors.fuse_errors
    async def read(fh: int) -> bytes:
        raise next(pending)

    async def scenario() -> list[int]:
        seen = []
        for _ in failures:
            with pytest.raises(pyfuse3.FUSEError) as excinfo:
                await read(1)
            seen.append(excinfo.value.errno)
        return seen

    with caplog.at_level(logging.DEBUG, logger="s3csi.fs.errors"):
        return asyncio.run(scenario())


def test_a_credentials_failure_on_every_call_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    failure = InvalidArgument("cannot read AWS credentials from /c: MissingSectionHeaderError")
    errors = [credentials_error("GetObject", failure, bucket="b", key=f"k{n}") for n in range(50)]
    assert calls(errors, caplog) == [errno.EACCES] * 50
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"read: {errors[0]}"
    assert not record.exc_info
    assert record.filename == "errors.py"  # where the failure was reported, not the limiter


@pytest.mark.parametrize(
    ("failure", "errno_value"),
    [
        (credentials_error("GetObject", Unavailable("STS down"), bucket="b", key="k"), errno.EIO),
        (S3Error("GetObject s3://b/k: Weird", code="Weird"), errno.EIO),
        (NoSuchKey("HeadObject s3://b/k: NoSuchKey", code="NoSuchKey"), errno.ENOENT),
        (RuntimeError("a bug"), errno.EIO),
    ],
)
def test_each_failure_is_an_errno(
    failure: BaseException, errno_value: int, caplog: pytest.LogCaptureFixture
) -> None:
    assert calls([failure, failure], caplog) == [errno_value, errno_value]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The repeat is not logged again; a missing object is routine (DEBUG only).
    assert len(warnings) == (0 if errno_value == errno.ENOENT else 1)


def test_distinct_objects_are_distinct_causes(caplog: pytest.LogCaptureFixture) -> None:
    errors = [S3Error(f"GetObject s3://b/k{n}: AccessDenied", code="AccessDenied") for n in range(3)]
    calls(errors, caplog)
    assert len(caplog.records) == 3


def test_no_assert_in_the_fuse_path() -> None:
    """``python -O`` drops asserts, and a failed one would reach pyfuse3 as an unexpected exception:
    the file system raises errors it names instead."""
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(Path(s3csi.fs.__file__).parent.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert found == []

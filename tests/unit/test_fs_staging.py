"""--staged-writes decisions, as tables: which opens need a staged copy, which are refused and by which
flag, and the size limit."""

from __future__ import annotations

import errno
import os

import pytest

from s3csi.fs.staging import OpenPlan, Refusal, open_plan, truncate_refusal, within_limit

RDONLY, WRONLY, RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
APPEND, TRUNC = os.O_APPEND, os.O_TRUNC
NEEDS_STAGING = Refusal(errno.EPERM, "--staged-writes")
NEEDS_OVERWRITE = Refusal(errno.EPERM, "--allow-overwrite")


@pytest.mark.parametrize(
    ("flags", "exists", "staged_writes", "allow_overwrite", "expected"),
    [
        # A new name (create): write-only streams, read-write and append are staged when allowed.
        (WRONLY, False, False, False, OpenPlan.STREAM),
        (WRONLY | TRUNC, False, True, False, OpenPlan.STREAM),
        (WRONLY, False, True, False, OpenPlan.STREAM),
        (RDWR, False, False, False, OpenPlan.STREAM),
        (RDWR, False, True, False, OpenPlan.STAGE_EMPTY),
        (RDWR | TRUNC, False, True, True, OpenPlan.STAGE_EMPTY),
        (WRONLY | APPEND, False, True, False, OpenPlan.STAGE_EMPTY),
        (WRONLY | APPEND, False, False, False, OpenPlan.STREAM),
        # An existing object replaced (O_TRUNC): --allow-overwrite; read-write ones are staged.
        (WRONLY | TRUNC, True, False, False, NEEDS_OVERWRITE),
        (WRONLY | TRUNC, True, True, False, NEEDS_OVERWRITE),
        (WRONLY | TRUNC, True, False, True, OpenPlan.STREAM),
        (WRONLY | TRUNC, True, True, True, OpenPlan.STREAM),
        (RDWR | TRUNC, True, False, True, OpenPlan.STREAM),
        (RDWR | TRUNC, True, True, True, OpenPlan.STAGE_EMPTY),
        # An existing object changed (no O_TRUNC, or O_APPEND): --staged-writes and --allow-overwrite.
        (WRONLY, True, False, True, NEEDS_STAGING),
        (RDWR, True, False, True, NEEDS_STAGING),
        (WRONLY | APPEND, True, False, True, NEEDS_STAGING),
        (RDWR, True, True, False, NEEDS_OVERWRITE),
        (WRONLY | APPEND, True, True, False, NEEDS_OVERWRITE),
        (RDWR, True, True, True, OpenPlan.STAGE_COPY),
        (WRONLY, True, True, True, OpenPlan.STAGE_COPY),
        (WRONLY | APPEND, True, True, True, OpenPlan.STAGE_COPY),
        (RDWR | APPEND, True, True, True, OpenPlan.STAGE_COPY),
        # O_APPEND | O_TRUNC: emptied, then appended to in order, as today.
        (WRONLY | APPEND | TRUNC, True, False, False, NEEDS_OVERWRITE),
        (WRONLY | APPEND | TRUNC, True, False, True, OpenPlan.STREAM),
        (WRONLY | APPEND | TRUNC, True, True, True, OpenPlan.STREAM),
        (RDWR | APPEND | TRUNC, True, True, True, OpenPlan.STAGE_EMPTY),
    ],
)
def test_open_plan(
    flags: int, exists: bool, staged_writes: bool, allow_overwrite: bool, expected: OpenPlan | Refusal
) -> None:
    assert (
        open_plan(flags, exists=exists, staged_writes=staged_writes, allow_overwrite=allow_overwrite)
        == expected
    )


@pytest.mark.parametrize(
    ("staged_writes", "allow_overwrite", "expected"),
    [
        (False, False, NEEDS_STAGING),
        (False, True, NEEDS_STAGING),
        (True, False, NEEDS_OVERWRITE),
        (True, True, None),
    ],
)
def test_truncate_of_a_closed_file(
    staged_writes: bool, allow_overwrite: bool, expected: Refusal | None
) -> None:
    assert truncate_refusal(staged_writes=staged_writes, allow_overwrite=allow_overwrite) == expected


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [(0, 0, True), (0, 1, True), (1024, 1024, True), (1025, 1024, False), (-1, 1024, False)],
)
def test_size_limit(size: int, limit: int, expected: bool) -> None:
    assert within_limit(size, limit) is expected

"""The retry decision table and the backoff."""

from __future__ import annotations

import random

import pytest

from s3csi.s3.errors import make_error
from s3csi.s3.retry import Idempotency, backoff_delay, is_transient, should_retry

IDEMPOTENT = Idempotency.IDEMPOTENT
NOT_IDEMPOTENT = Idempotency.NOT_IDEMPOTENT


@pytest.mark.parametrize(
    ("code", "status", "idempotency", "attempt", "retry"),
    [
        ("SlowDown", 503, IDEMPOTENT, 1, True),
        ("SlowDown", 503, NOT_IDEMPOTENT, 1, True),  # throttled: the server did nothing
        ("SlowDown", 429, NOT_IDEMPOTENT, 1, True),
        ("RequestTimeout", 400, IDEMPOTENT, 1, True),
        ("InternalError", 500, IDEMPOTENT, 5, True),
        ("InternalError", 500, IDEMPOTENT, 6, False),  # attempts used up
        ("InternalError", 500, NOT_IDEMPOTENT, 1, False),  # it may have been carried out
        ("ServiceUnavailable", 503, IDEMPOTENT, 1, True),
        ("HTTP502", 502, IDEMPOTENT, 1, True),
        ("ConnectionError", None, NOT_IDEMPOTENT, 1, True),  # never connected: nothing was sent
        ("ConnectionLost", None, IDEMPOTENT, 1, True),
        ("ConnectionLost", None, NOT_IDEMPOTENT, 1, False),
        ("Timeout", None, IDEMPOTENT, 1, True),
        ("Timeout", None, NOT_IDEMPOTENT, 1, False),
        ("AccessDenied", 403, IDEMPOTENT, 1, False),
        ("NoSuchKey", 404, IDEMPOTENT, 1, False),
        ("InvalidAccessKeyId", 403, IDEMPOTENT, 1, False),
        ("BadRequest", 400, IDEMPOTENT, 1, False),
        ("MalformedResponse", None, IDEMPOTENT, 1, False),
        ("TLSError", None, IDEMPOTENT, 1, False),
    ],
)
def test_retry_table(
    code: str, status: int | None, idempotency: Idempotency, attempt: int, retry: bool
) -> None:
    error = make_error("Op", code=code, message="", status=status, bucket="b", key="k")
    assert should_retry(error, idempotency, attempt, max_attempts=6) is retry


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("SlowDown", 503, True),
        ("AccessDenied", 403, False),
        ("HTTP504", 504, True),
        ("NoSuchKey", 404, False),
    ],
)
def test_is_transient(code: str, status: int, transient: bool) -> None:
    assert (
        is_transient(make_error("Op", code=code, message="", status=status, bucket="b", key=None))
        is transient
    )


def test_backoff_is_jittered_exponential_and_capped() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (10, 5.0)]:
        delays = [backoff_delay(attempt, 0.1, 5.0, rng) for _ in range(200)]
        assert all(0.0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not pinned at zero

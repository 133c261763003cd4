"""Which failures are retried, and how long to wait: pure decisions, tested by tables."""

from __future__ import annotations

import random
from enum import Enum

from s3csi.s3.errors import CONNECTION_ERROR, THROTTLING_CODES, S3Error, is_transient_failure


class Idempotency(Enum):
    """Whether repeating a request can do harm if the first one reached the server."""

    # GET, HEAD, PUT of a whole object or a part, DELETE, batch delete, multipart completion.
    IDEMPOTENT = "idempotent"
    # CreateMultipartUpload: a repeat would leave an orphan upload behind.
    NOT_IDEMPOTENT = "not-idempotent"


def _server_did_not_act(error: S3Error) -> bool:
    """A connection that was never established, or throttling: the request was not carried out."""
    return error.code == CONNECTION_ERROR or error.code in THROTTLING_CODES or error.status == 429


def is_transient(error: S3Error) -> bool:
    """Throttling, 5xx, request timeouts and connection errors; never a 4xx such as AccessDenied."""
    return is_transient_failure(error.code, error.status)


def should_retry(error: S3Error, idempotency: Idempotency, attempt: int, max_attempts: int) -> bool:
    """Retry after failed attempt number ``attempt`` (1-based)?"""
    if attempt >= max_attempts or not is_transient(error):
        return False
    return idempotency is Idempotency.IDEMPOTENT or _server_did_not_act(error)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(max_s, base_s * 2^(attempt-1))] seconds, so that many clients
    throttled at once do not come back in step."""
    ceiling = min(max_s, base_s * (2 ** (attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)

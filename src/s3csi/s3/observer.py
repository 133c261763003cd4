"""What the S3 client tells an observer about each HTTP request it sends (one per attempt: a retried call is
several requests), for the mounter's metrics (``s3csi.fs.metrics``).

The client calls the observer inline, on the event loop, once per request: an implementation must be cheap
and must not raise. Durations are in seconds, from the moment the request was about to be signed and sent."""

from __future__ import annotations

from typing import Protocol

from s3csi.s3.errors import S3Error


class RequestObserver(Protocol):
    def succeeded(
        self, operation: str, first_byte_s: float, total_s: float, sent: int, received: int
    ) -> None:
        """``operation`` (an S3 API name such as GetObject) answered: its response head arrived after
        ``first_byte_s``, the whole response after ``total_s``; ``sent`` and ``received`` are body bytes."""

    def failed(self, operation: str, error: S3Error, total_s: float) -> None:
        """``operation`` failed with ``error``: an error answer, a failure below HTTP, or credentials
        that could not be had (nothing was sent)."""
